import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { createReconcileActivities } from '../../activities/reconciliation/reconcile';
import {
  emptyTally,
  reconcileRunKey,
  reconcileScheduleId,
  reconcileSlices,
  reconcileStatusQuery,
  type ReconcilePosition,
  type ReconcileResult,
  type ReconcileRun,
  type ReconcileStatus,
  type ReconcileTally,
  type ReconcileWorkflowInput,
} from './contract';
import { FailureType } from '../../domain/failure-types';

type ReconcileActivities = ReturnType<typeof createReconcileActivities>;

/**
 * Stripe pages: an outage, a rate limit or a 5xx is retried with backoff for hours, and the
 * watermark waits meanwhile; a refused request (bad key, invalid parameters) fails at once.
 * Runs of the schedule are skipped while one is still retrying, so nothing piles up.
 */
const pageActivityOptions: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    nonRetryableErrorTypes: [
      FailureType.StripeRefused,
      FailureType.ReconcileNotConfigured,
      FailureType.InvalidPage,
    ],
  },
};

/** The run's own records in PostgreSQL. */
const recordActivityOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '1 hour',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: [FailureType.ReconcileNotConfigured],
  },
};

const pages = proxyActivities<ReconcileActivities>(pageActivityOptions);
const records = proxyActivities<ReconcileActivities>(recordActivityOptions);

/** Pages per run of the workflow before it continues as new, so that its history stays small. */
const PAGES_PER_HISTORY = 200;

/**
 * One reconciliation with Stripe's Events API: every event of the window whose webhook never
 * started its workflow is started now, as the webhook would have (same workflow, same ID), so
 * an event already delivered is a duplicate and nothing runs twice. Slices are read oldest
 * first and the watermark moves past a slice only once all its pages are done.
 */
export async function reconcileWorkflow(input: ReconcileWorkflowInput = {}): Promise<ReconcileResult> {
  const info = workflowInfo();
  const runKey = reconcileRunKey(info.workflowId, info.firstExecutionRunId);
  let tally: ReconcileTally = input.resume?.tally ?? emptyTally();
  let run: ReconcileRun | null = input.resume?.run ?? null;
  let position: ReconcilePosition = input.resume?.position ?? { slice: 0, group: 0, page: 0, cursor: null };
  let stage: ReconcileStatus['stage'] = run ? 'reading' : 'starting';
  setHandler(reconcileStatusQuery, () => ({
    stage,
    runId: run?.runId ?? null,
    window: run ? { fromSeconds: run.fromSeconds, untilSeconds: run.untilSeconds } : null,
    position: run ? position : null,
    tally,
  }));

  run ??= await records.beginReconcileRun({
    runKey,
    // A backfill moves no watermark: its window need not join the one before.
    watermark: input.window ? null : reconcileScheduleId(info.taskQueue),
    window: input.window ?? null,
  });
  stage = 'reading';
  const slices = reconcileSlices(run.fromSeconds, run.untilSeconds, run.sliceSeconds);
  let pagesInHistory = 0;
  try {
    while (position.slice < slices.length) {
      if (pagesInHistory >= PAGES_PER_HISTORY || workflowInfo().continueAsNewSuggested) {
        await continueAsNew<typeof reconcileWorkflow>({ ...input, resume: { run, position, tally } });
      }
      const page = await pages.reconcileEventPage({
        run,
        runKey,
        key: { runId: run.runId, slice: position.slice, group: position.group, page: position.page },
        cursor: position.cursor,
      });
      pagesInHistory += 1;
      tally = {
        pages: tally.pages + 1,
        events: tally.events + page.events,
        started: tally.started + page.started,
        duplicates: tally.duplicates + page.duplicates,
        ignored: tally.ignored + page.ignored,
        rejected: tally.rejected + page.rejected,
      };
      if (page.nextCursor !== null) {
        position = { ...position, page: position.page + 1, cursor: page.nextCursor };
      } else if (position.group + 1 < run.typeGroups.length) {
        position = { slice: position.slice, group: position.group + 1, page: 0, cursor: null };
      } else {
        position = { slice: position.slice + 1, group: 0, page: 0, cursor: null };
      }
    }
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    stage = 'failed';
    const cause = error.cause instanceof ApplicationFailure ? error.cause : null;
    await records.finishReconcileRun({
      runId: run.runId,
      status: 'failed',
      error: `${cause?.type ?? 'ActivityFailure'}: ${cause?.message ?? error.message}`,
    });
    throw error;
  }
  const result = await records.finishReconcileRun({ runId: run.runId, status: 'completed' });
  stage = 'completed';
  tally = result;
  return result;
}
