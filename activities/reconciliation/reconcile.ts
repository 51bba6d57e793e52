import { activityInfo, heartbeat, log } from '@temporalio/activity';
import type Stripe from 'stripe';
import {
  beginReconcileRun,
  finishReconcileRun,
  findReconcilePage,
  recordReconcilePage,
  rejectedEventExists,
  type PageKey,
} from '../../db/reconciliation/reconcile';
import { recordRejectedEvent } from '../../db/stripe/rejected-events';
import {
  eventTypeGroups,
  reconcileSlices,
  type ReconcilePageResult,
  type ReconcileResult,
  type ReconcileRun,
} from '../../workflows/reconciliation/contract';
import { permanentTemporalRefusal, takeInStripeEvent } from '../../stripe/event-intake';
import { ROUTED_STRIPE_EVENT_TYPES, type EventRoute, type RouteSettings } from '../../stripe/event-routes';
import { errors } from '../../domain/errors';
import { listStripeEvents } from '../../stripe/events';
import type { ActivityDependencies } from '../dependencies';

/** One page of Stripe's `GET /v1/events`, newest first, as Stripe sent it. */
export interface StripeEventPage {
  events: unknown[];
  hasMore: boolean;
}

export type StripeEventLister = (query: {
  types: string[];
  fromSeconds: number;
  untilSeconds: number;
  startingAfter: string | null;
  limit: number;
}) => Promise<StripeEventPage>;

/** Lists events through the official SDK: `created[gte]`/`created[lt]`, `types[]`, `starting_after`. */
export function stripeEventLister(stripe: Stripe): StripeEventLister {
  return async (query) => {
    const page = await listStripeEvents(stripe, query);
    return { events: page.data, hasMore: page.has_more };
  };
}

/** Starts an event's workflow exactly as the webhook does (worker/maintenance-schedule.ts). */
export interface EventWorkflowStarter {
  /** `duplicate` when a workflow with the event's ID exists already. */
  start(
    route: Extract<EventRoute, { action: 'start' }>,
    eventId: string,
    memo: { reconcileRun: string },
  ): Promise<'started' | 'duplicate'>;
  /** The reconcile run named in the workflow's memo, if one started it. */
  startedByRun(workflowId: string): Promise<string | null>;
}

export interface ReconcileSettings {
  routes: RouteSettings;
  /** Events per request to Stripe (at most 100). */
  pageSize: number;
  sliceSeconds: number;
  overlapSeconds: number;
  lookbackSeconds: number;
  delaySeconds: number;
}

/** What reconciliation needs beyond the other activities: Stripe's events and Temporal's starts. */
export interface ReconcileDependencies {
  listEvents: StripeEventLister;
  starter: EventWorkflowStarter;
  settings: ReconcileSettings;
}

/** What the reconcile activities use: the database, Stripe's events and Temporal's starts, the counters. */
export type ReconcileActivityDependencies = Pick<ActivityDependencies, 'sql' | 'reconcile' | 'metrics'>;

/** Activities of the reconcile workflow: its run, its pages, and the starts of missed events. */
export function createReconcileActivities<D extends ReconcileActivityDependencies>({
  sql,
  reconcile,
  metrics,
}: D) {
  const need = (): ReconcileDependencies => {
    if (!reconcile) {
      throw errors.reconcileNotConfigured();
    }
    return reconcile;
  };

  return {
    /** Records the run once and answers its window; a retry answers the same run. */
    async beginReconcileRun(input: {
      runKey: string;
      watermark: string | null;
      window: { fromSeconds: number; untilSeconds: number } | null;
    }): Promise<ReconcileRun> {
      const { settings } = need();
      const run = await beginReconcileRun(sql, {
        ...input,
        rules: {
          nowSeconds: Math.floor(Date.now() / 1000),
          overlapSeconds: settings.overlapSeconds,
          lookbackSeconds: settings.lookbackSeconds,
          delaySeconds: settings.delaySeconds,
        },
        typeGroups: eventTypeGroups(ROUTED_STRIPE_EVENT_TYPES),
        sliceSeconds: settings.sliceSeconds,
      });
      log.info('reconcile run', { runId: run.runId, from: run.fromSeconds, until: run.untilSeconds });
      return run;
    },

    /**
     * Reads one page of events and hands each to Temporal as its webhook would. The page is
     * recorded with its counts (and the watermark moved when it ends its slice) in one
     * transaction; a retry of a recorded page answers what was recorded.
     */
    async reconcileEventPage(input: {
      run: ReconcileRun;
      runKey: string;
      key: PageKey;
      cursor: string | null;
    }): Promise<ReconcilePageResult> {
      const { listEvents, starter, settings } = need();
      const { run, key } = input;
      const done = await findReconcilePage(sql, key);
      if (done) return done;
      const slice = reconcileSlices(run.fromSeconds, run.untilSeconds, run.sliceSeconds)[key.slice];
      const types = run.typeGroups[key.group];
      if (!slice || !types) throw errors.invalidPage();

      let page: StripeEventPage;
      try {
        page = await listEvents({
          types,
          fromSeconds: slice.fromSeconds,
          untilSeconds: slice.untilSeconds,
          startingAfter: input.cursor,
          limit: settings.pageSize,
        });
      } catch (error) {
        throw stripeFailure(error);
      }

      // After a crash mid-page, a workflow this run started is not someone else's duplicate.
      const retried = activityInfo().attempt > 1;
      const tally = { events: 0, started: 0, duplicates: 0, ignored: 0, rejected: 0 };
      const startedEvents: { id: string; type: string }[] = [];
      let lastId: string | null = null;
      for (const payload of page.events) {
        tally.events += 1;
        const body = JSON.stringify(payload);
        const intake = takeInStripeEvent(payload, body, settings.routes);
        const eventId = intake.action === 'reject' ? intake.eventId : intake.event.id;
        lastId = (payload as { id?: string }).id ?? lastId;
        heartbeat(eventId);
        if (intake.action === 'ignore') {
          tally.ignored += 1;
          continue;
        }
        if (intake.action === 'reject') {
          await rejectOnce(sql, { ...intake, payload: body });
          tally.rejected += 1;
          continue;
        }
        let outcome: 'started' | 'duplicate';
        try {
          outcome = await starter.start(intake.route, eventId, { reconcileRun: input.runKey });
        } catch (error) {
          const refusal = permanentTemporalRefusal(error);
          if (!refusal) throw error;
          await rejectOnce(sql, {
            eventId,
            eventType: intake.event.type,
            reasonCode: 'refused_by_temporal',
            reason: refusal,
            payload: body,
          });
          tally.rejected += 1;
          continue;
        }
        if (outcome === 'duplicate' && retried && (await starter.startedByRun(eventId)) === input.runKey) {
          outcome = 'started';
        }
        if (outcome === 'started') {
          tally.started += 1;
          startedEvents.push({ id: eventId, type: intake.event.type });
          log.warn('reconcile started an event its webhook never started', {
            eventId,
            eventType: intake.event.type,
            workflowType: intake.route.workflowType,
          });
        } else {
          tally.duplicates += 1;
        }
      }

      const nextCursor = page.hasMore ? lastId : null;
      const endsSlice = nextCursor === null && key.group === run.typeGroups.length - 1;
      const { result, recordedNow } = await recordReconcilePage(sql, key, {
        ...tally,
        nextCursor,
        startedEvents,
        advanceToSeconds: endsSlice ? slice.untilSeconds : null,
      });
      // Counted once, by the attempt that recorded the page: the "events found missed" metric.
      if (recordedNow && startedEvents.length > 0) metrics?.reconcileMissedEvents(startedEvents.length);
      return result;
    },

    /** Closes the run (once) and answers its totals. */
    async finishReconcileRun(input: {
      runId: number;
      status: 'completed' | 'failed';
      error?: string;
    }): Promise<ReconcileResult> {
      const result = await finishReconcileRun(sql, input.runId, input);
      log.info('reconcile run finished', { ...result, status: input.status });
      return result;
    },
  };
}

/** A rejected event is stored once per event: reading it again is not another delivery. */
async function rejectOnce(
  sql: ActivityDependencies['sql'],
  event: { eventId: string; eventType: string | null; reasonCode: string; reason: string; payload: string },
): Promise<void> {
  if (await rejectedEventExists(sql, event.eventId)) return;
  await recordRejectedEvent(sql, event);
  log.warn('event rejected for good', {
    eventId: event.eventId,
    eventType: event.eventType,
    reasonCode: event.reasonCode,
  });
}

/**
 * Stripe's answer as a Temporal failure: an outage, a rate limit or a 5xx stays retryable (the
 * activity's policy retries it, and the watermark waits); a refusal of the request itself (bad
 * key, no permission, invalid parameters) cannot heal by retrying.
 */
function stripeFailure(error: unknown): unknown {
  const { type, statusCode, message } = (error ?? {}) as {
    type?: string;
    statusCode?: number;
    message?: string;
  };
  const refused =
    type === 'StripeAuthenticationError' ||
    type === 'StripePermissionError' ||
    type === 'StripeInvalidRequestError';
  if (!refused) return error;
  return errors.stripeRefused(`to list events (${statusCode ?? 'no status'})`, message ?? String(type));
}
