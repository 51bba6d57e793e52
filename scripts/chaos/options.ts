import { parseArgs } from 'node:util';

/** The command line of `npm run chaos`. */

export const USAGE = `usage: npm run chaos -- [options]

Runs the whole service as separate processes (PostgreSQL, the Temporal dev server, an SMTP sink,
the worker, the API) on 127.0.0.1, sends signed Stripe purchase events with duplicates, second
events per session and shuffled order while killing and restarting the processes, and beside
them batches of usage events through POST /v1/usage (some duplicated), then drains and checks
that every sale was granted exactly once, with one receipt, and every usage event counted once.

  --events N          distinct events to send (default: 1500)
  --rate N            deliveries per second, a burst of concurrent copies counting as one (default: 15)
  --usage-events N    distinct usage events to send during the run, 0 for none (default: 3000)
  --seed N            seed of the plan: accounts, events, order and faults (default: 1)
  --drain-timeout S   give up draining after S seconds (default: 600)
  --keep              keep the data directory (databases, logs) after the run
  --json              print the result as JSON on stdout (progress goes to stderr)
  -h, --help          this help

Exit 0: every check passed. Exit 1: a check failed. Exit 2: bad usage, or the stack could not run.
`;

export interface ChaosOptions {
  events: number;
  usageEvents: number;
  rate: number;
  seed: number;
  drainTimeoutMs: number;
  keep: boolean;
  json: boolean;
}

export class UsageError extends Error {}

function integer(value: string, name: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return parsed;
}

/** The options, or null when help was asked for. */
export function parseChaosOptions(argv: string[]): ChaosOptions | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        events: { type: 'string', default: '1500' },
        'usage-events': { type: 'string', default: '3000' },
        rate: { type: 'string', default: '15' },
        seed: { type: 'string', default: '1' },
        'drain-timeout': { type: 'string', default: '600' },
        keep: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return null;
  return {
    events: integer(values.events, 'events', 10, 1_000_000),
    usageEvents: integer(values['usage-events'], 'usage-events', 0, 1_000_000),
    rate: integer(values.rate, 'rate', 1, 1_000),
    seed: integer(values.seed, 'seed', 0, 2 ** 32 - 1),
    drainTimeoutMs: integer(values['drain-timeout'], 'drain-timeout', 10, 86_400) * 1000,
    keep: values.keep,
    json: values.json,
  };
}
