import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { devStackFile, readDevStack } from '../../cli/dev-stack';
import { createCreditsClient, type CreditsClient } from '../../client/index';

/**
 * Sends usage events (or a check) to a running API, to try usage by hand: a batch of events of
 * one feature, the same batch again (every event a duplicate), or a check that may reserve.
 * Prints the API's answer as it came. Without --url / --key: $API_URL / $BILLING_API_KEY, else
 * the running `npm run dev`'s.
 *
 *   npm run send-usage -- --account demo --feature llm-tokens --quantity 2500 --count 3
 *   npm run send-usage -- --account demo --feature image-generation --id img-1 --repeat 2
 *   npm run send-usage -- --check --account demo --feature image-generation --quantity 4
 */

const HELP = `usage: npm run send-usage -- [options]

Sends a batch of usage events to POST /v1/usage (or, with --check, asks POST /v1/check) and
prints each answer.

  --account ID        the account (default: demo, the account \`npm run dev\` creates)
  --feature KEY       a feature of GET /v1/features (default: llm-tokens)
  --quantity N        units per event (default: 1000)
  --count N           events in the batch, 1 to 1000 (default: 1)
  --id ID             the event ID (with --count > 1: ID-1, ID-2, …); default: new random IDs
  --repeat N          send the same batch N times: the replays answer \`duplicate\` (default: 1)
  --reservation ID    a hold (from --check --reserve) that the event settles
  --check             ask POST /v1/check instead of sending usage
  --reserve SECONDS   with --check: hold the credits for this long
  --url URL           the API (default: $API_URL, else the running dev stack's)
  --key KEY           an API key with role write (default: $BILLING_API_KEY, else the dev stack's)
  -h, --help          this help
`;

class UsageError extends Error {}

function positive(value: string | undefined, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < 1 || parsed > max) {
    throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return parsed;
}

/** The API and its key: the flags, the environment, else the running dev stack. */
function target(url: string | undefined, key: string | undefined): { url: string; key: string } {
  const fromEnv = { url: url || process.env.API_URL, key: key || process.env.BILLING_API_KEY };
  if (fromEnv.url && fromEnv.key) return { url: fromEnv.url, key: fromEnv.key };
  const found = readDevStack(devStackFile());
  if (found.kind !== 'running') {
    throw new UsageError(
      'no --url/--key (nor API_URL/BILLING_API_KEY) and no running dev stack: start `npm run dev`',
    );
  }
  return { url: fromEnv.url || found.stack.api.url, key: fromEnv.key || found.stack.api.key };
}

/** Prints an answer as it came: the status and the body. */
function show(route: string, answer: { response: Response; data?: unknown; error?: unknown }): void {
  const body = answer.data ?? answer.error;
  process.stdout.write(`POST ${route} → ${answer.response.status}\n${JSON.stringify(body, null, 2)}\n`);
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        account: { type: 'string', default: 'demo' },
        feature: { type: 'string', default: 'llm-tokens' },
        quantity: { type: 'string' },
        count: { type: 'string' },
        id: { type: 'string' },
        repeat: { type: 'string' },
        reservation: { type: 'string' },
        check: { type: 'boolean', default: false },
        reserve: { type: 'string' },
        url: { type: 'string' },
        key: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    const quantity = positive(values.quantity, 'quantity', 1000);
    const { url, key } = target(values.url, values.key);
    const api: CreditsClient = createCreditsClient({ baseUrl: url, apiKey: key });
    if (values.check) {
      const reserve =
        values.reserve === undefined
          ? undefined
          : { ttlSeconds: positive(values.reserve, 'reserve', 600), idempotencyKey: `check-${randomUUID()}` };
      const body = {
        accountId: values.account,
        feature: values.feature,
        quantity,
        ...(reserve ? { reserve } : {}),
      };
      show('/v1/check', await api.POST('/v1/check', { body }));
      return 0;
    }
    const count = positive(values.count, 'count', 1, 1000);
    const repeat = positive(values.repeat, 'repeat', 1, 100);
    const events = Array.from({ length: count }, (_, i) => ({
      id: values.id === undefined ? `evt-${randomUUID()}` : count === 1 ? values.id : `${values.id}-${i + 1}`,
      accountId: values.account,
      feature: values.feature,
      quantity,
      ...(values.reservation === undefined ? {} : { reservationId: values.reservation }),
    }));
    for (let i = 0; i < repeat; i++) show('/v1/usage', await api.POST('/v1/usage', { body: { events } }));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${HELP}`);
      return 2;
    }
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
