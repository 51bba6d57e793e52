import { Client, Connection } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { parseArgs } from 'node:util';
import { stripeEventLister, type StripeEventLister } from '../activities/reconciliation/reconcile';
import { ConfigError, loadReconcileCommandConfig } from '../config/env';
import { operatorEnvironment } from './dev-stack';
import { temporalDataConverter } from '../config/payload-codec';
import { createStripeClient } from '../stripe/client';
import {
  eventTypeGroups,
  RECONCILE_WORKFLOW_TYPE,
  STRIPE_EVENTS_RETENTION_SECONDS,
  type ReconcileResult,
  type ReconcileWorkflowInput,
} from '../workflows/reconciliation/contract';
import {
  planEventStart,
  takeInStripeEvent,
  workflowLookup,
  type WorkflowLookup,
} from '../stripe/event-intake';
import { startOnce } from '../temporal/start-once';
import { ROUTED_STRIPE_EVENT_TYPES, type RouteSettings } from '../stripe/event-routes';

/**
 * A backfill by hand: the events Stripe created in a window are handed to Temporal as their
 * webhooks would have been, by a reconcile workflow (the worker must run), which leaves the
 * schedule's watermark alone. `--dry-run` only lists what would start and changes nothing.
 */

const USAGE = `usage: npm run reconcile -- --since <date> [--until <date>] [--dry-run] [--json]

Starts, as their webhooks would have, the workflows of the Stripe events created from --since
(included) to --until (excluded; default now) that no webhook started. Events already processed
are duplicates and change nothing. Stripe's Events API keeps 30 days of events.

  --since <date>   ISO 8601, e.g. 2026-11-28 or 2026-11-28T09:30:00Z
  --until <date>   ISO 8601; default now
  --dry-run        list what would start (and what is already started, ignored or rejected);
                   change nothing
  --json           print the result as JSON
  -h, --help       this help

Environment: as the worker's (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE,
TEMPORAL_PAYLOAD_KEYS, STRIPE_SECRET_KEY, DATABASE_URL…). Without DATABASE_URL, the database and
Temporal settings of the running \`npm run dev\`. Exit 0: done. Exit 1: the run failed.
Exit 2: bad arguments or configuration.
`;

export class UsageError extends Error {}

export interface BackfillArguments {
  fromSeconds: number;
  untilSeconds: number;
  dryRun: boolean;
  json: boolean;
  help: boolean;
}

function parseDate(name: string, value: string): number {
  const match =
    /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(
      value,
    );
  const part = (i: number) => Number(match?.[i] ?? 0);
  const [year, month, day, hour, minute, second] = [part(1), part(2), part(3), part(4), part(5), part(6)];
  // Date.parse would roll an impossible day over (2026-11-31 is December 1st): refused instead.
  const real =
    match !== null &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= new Date(Date.UTC(year, month, 0)).getUTCDate() &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59;
  // A time without an offset is UTC, as a date alone is, never the machine's own time zone.
  const ms = real
    ? Date.parse(match[4] !== undefined && match[7] === undefined ? `${value}Z` : value)
    : Number.NaN;
  if (Number.isNaN(ms))
    throw new UsageError(`--${name}: ${value} is not an ISO 8601 date such as 2026-11-28T09:30:00Z`);
  return Math.floor(ms / 1000);
}

/** The window and flags of a command line, checked against what Stripe keeps. */
export function parseBackfillArguments(argv: string[], nowSeconds: number): BackfillArguments {
  let values: { since?: string; until?: string; 'dry-run': boolean; json: boolean; help: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const flags = { dryRun: values['dry-run'], json: values.json, help: values.help };
  if (values.help) return { fromSeconds: 0, untilSeconds: 0, ...flags };
  if (values.since === undefined) throw new UsageError('--since is required');
  const fromSeconds = parseDate('since', values.since);
  const untilSeconds = values.until === undefined ? nowSeconds : parseDate('until', values.until);
  if (untilSeconds <= fromSeconds) throw new UsageError('--until must be after --since');
  if (untilSeconds > nowSeconds) throw new UsageError('--until is in the future');
  const oldest = nowSeconds - STRIPE_EVENTS_RETENTION_SECONDS;
  if (fromSeconds < oldest) {
    throw new UsageError(
      `--since is more than 30 days ago: Stripe's Events API keeps events from ${new Date(oldest * 1000).toISOString()} on`,
    );
  }
  return { fromSeconds, untilSeconds, ...flags };
}

export interface PlannedEvent {
  eventId: string;
  eventType: string | null;
  created: number | null;
  /**
   * `start`: the event is news (no workflow has it: a new run, or a signal to the run waiting
   * for it); `duplicate`: a workflow has it already (the webhook, or an earlier run).
   */
  outcome: 'start' | 'duplicate' | 'ignore' | 'reject';
  workflowType: string | null;
  /** The workflow that would take it: the event's own, its top-up's, or a late run's. */
  workflowId: string | null;
  reason: string | null;
}

/**
 * What a backfill of the window would do, event by event, read from Stripe page by page, newest
 * first, with the intake and the start rules the webhook uses. Asks Temporal where workflows
 * stand; writes nothing.
 */
export async function planBackfill(deps: {
  listEvents: StripeEventLister;
  describeWorkflow: WorkflowLookup;
  routes: RouteSettings;
  window: { fromSeconds: number; untilSeconds: number };
  pageSize?: number;
}): Promise<PlannedEvent[]> {
  const planned: PlannedEvent[] = [];
  for (const types of eventTypeGroups(ROUTED_STRIPE_EVENT_TYPES)) {
    let cursor: string | null = null;
    do {
      const page = await deps.listEvents({
        types,
        ...deps.window,
        startingAfter: cursor,
        limit: deps.pageSize ?? 100,
      });
      for (const payload of page.events) {
        const intake = takeInStripeEvent(payload, JSON.stringify(payload), deps.routes);
        const created = (payload as { created?: unknown }).created;
        const base = { created: typeof created === 'number' ? created : null };
        if (intake.action === 'reject') {
          planned.push({
            ...base,
            eventId: intake.eventId,
            eventType: intake.eventType,
            outcome: 'reject',
            workflowType: null,
            workflowId: null,
            reason: `${intake.reasonCode}: ${intake.reason.split('\n')[0] ?? ''}`,
          });
        } else if (intake.action === 'ignore') {
          planned.push({
            ...base,
            eventId: intake.event.id,
            eventType: intake.event.type,
            outcome: 'ignore',
            workflowType: null,
            workflowId: null,
            reason: intake.reason,
          });
        } else {
          // A top-up's payment event goes to its top-up's workflow, or a late run of its own.
          const start = await planEventStart(deps.describeWorkflow, intake.route, intake.event.id);
          planned.push({
            ...base,
            eventId: intake.event.id,
            eventType: intake.event.type,
            outcome: start.outcome,
            workflowType: intake.route.workflowType,
            workflowId: start.workflowId,
            reason: null,
          });
        }
      }
      const last = page.events.at(-1) as { id?: string } | undefined;
      cursor = page.hasMore && last?.id ? last.id : null;
    } while (cursor !== null);
  }
  return planned;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

async function main(argv: string[]): Promise<number> {
  let args: BackfillArguments;
  try {
    args = parseBackfillArguments(argv, Math.floor(Date.now() / 1000));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // The worker's settings from the environment, or else the running `npm run dev`'s.
  const environment = operatorEnvironment(process.env, 'DATABASE_URL');
  if ('error' in environment) {
    process.stderr.write(`${environment.error}\n`);
    return 2;
  }
  let config: ReturnType<typeof loadReconcileCommandConfig>;
  try {
    config = loadReconcileCommandConfig(environment.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nSee .env.example for every variable and its meaning.\n`);
    return 2;
  }
  const stripe = createStripeClient(config.stripe);
  if (!stripe) {
    process.stderr.write('STRIPE_SECRET_KEY is required: the events are read from Stripe\n');
    return 2;
  }
  const window = { fromSeconds: args.fromSeconds, untilSeconds: args.untilSeconds };
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: temporalDataConverter(config.temporalPayloads),
  });
  try {
    if (args.dryRun) {
      const planned = await planBackfill({
        listEvents: stripeEventLister(stripe),
        describeWorkflow: workflowLookup(client.workflow),
        routes: config.routes,
        window,
      });
      const count = (outcome: PlannedEvent['outcome']) => planned.filter((e) => e.outcome === outcome).length;
      const summary = {
        start: count('start'),
        duplicate: count('duplicate'),
        ignore: count('ignore'),
        reject: count('reject'),
      };
      if (args.json) {
        process.stdout.write(
          `${JSON.stringify({ dryRun: true, from: iso(window.fromSeconds), until: iso(window.untilSeconds), summary, events: planned }, null, 2)}\n`,
        );
        return 0;
      }
      process.stdout.write(
        `dry run: events created from ${iso(window.fromSeconds)} until ${iso(window.untilSeconds)}\n`,
      );
      for (const event of planned) {
        const when = event.created === null ? '' : ` ${iso(event.created)}`;
        const what = event.workflowType ? `${event.workflowType} ${event.workflowId}` : (event.reason ?? '');
        process.stdout.write(
          `  ${event.outcome.padEnd(9)} ${event.eventId} ${event.eventType ?? '?'}${when} ${what}\n`,
        );
      }
      process.stdout.write(
        `would start ${summary.start}; already started ${summary.duplicate}; ignored ${summary.ignore}; would reject ${summary.reject}. Nothing was changed.\n`,
      );
      return 0;
    }

    const workflowId = `credits-reconcile-backfill:${config.temporal.taskQueue}:${iso(window.fromSeconds)}-${iso(window.untilSeconds)}`;
    const input: ReconcileWorkflowInput = { window };
    const started = await startOnce(client.workflow, RECONCILE_WORKFLOW_TYPE, {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [input],
      // The same window again is a new run (it starts only what is still missing); a run of it
      // still going is joined instead.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
    const handle = client.workflow.getHandle(workflowId);
    if (started === 'duplicate') {
      process.stderr.write(`a backfill of this window is running already: waiting for it (${workflowId})\n`);
    }
    if (!args.json)
      process.stdout.write(`backfill ${workflowId} started; waiting for it (the worker runs it)\n`);
    let result: ReconcileResult;
    try {
      result = (await handle.result()) as ReconcileResult;
    } catch (error) {
      process.stderr.write(
        `the backfill failed: ${(error as Error).message}; see ${workflowId} in the Temporal UI\n`,
      );
      return 1;
    }
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ workflowId, ...result }, null, 2)}\n`);
    } else {
      process.stdout.write(
        `done: ${result.pages} pages, ${result.events} events, ${result.started} started (missed by the webhook), ` +
          `${result.duplicates} already started, ${result.ignored} ignored, ${result.rejected} rejected (run ${result.runId})\n`,
      );
    }
    return 0;
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
