import { defineQuery } from '@temporalio/workflow';
import type {
  ReconcilePageResult,
  ReconcileResult,
  ReconcileRun,
  ReconcileTally,
} from '../../db/reconciliation/reconcile';

// Defined where their data lives; named here too, as the workflow and its activities use them.
export type { ReconcilePageResult, ReconcileResult, ReconcileRun, ReconcileTally };

/** What the worker (which schedules it), the backfill command and the reconcile workflow agree on. */

export const RECONCILE_WORKFLOW_TYPE = 'reconcileWorkflow';

/** The schedule of a task queue; its runs' workflow IDs start with it. */
export const reconcileScheduleId = (taskQueue: string) => `credits-reconcile:${taskQueue}`;

/**
 * How a run is named in the database and in the memo of the workflows it starts: its workflow ID
 * and the first run of its chain, the same across retries and continue-as-new.
 */
export const reconcileRunKey = (workflowId: string, firstRunId: string) => `${workflowId}/${firstRunId}`;

/** Stripe's Events API keeps 30 days of events and accepts at most 20 types per request. */
export const STRIPE_EVENTS_RETENTION_SECONDS = 30 * 24 * 60 * 60;
export const STRIPE_EVENT_TYPES_PER_REQUEST = 20;

/**
 * A run reads the events created in `[from, until)` (epoch seconds). Scheduled runs read from the
 * watermark (minus the overlap) and move it on; a backfill reads the window it was given and
 * leaves the watermark alone.
 */
export interface ReconcileWorkflowInput {
  /** A backfill's window; without one, the run reads from the watermark to now. */
  window?: { fromSeconds: number; untilSeconds: number };
  /** Carried across continue-as-new: the run and where it stands. */
  resume?: { run: ReconcileRun; position: ReconcilePosition; tally: ReconcileTally };
}

/** Where a run stands: the slice, the group of types, and the cursor within them. */
export interface ReconcilePosition {
  slice: number;
  group: number;
  page: number;
  cursor: string | null;
}

export interface ReconcileStatus {
  stage: 'starting' | 'reading' | 'completed' | 'failed';
  runId: number | null;
  window: { fromSeconds: number; untilSeconds: number } | null;
  position: ReconcilePosition | null;
  tally: ReconcileTally;
}

export const reconcileStatusQuery = defineQuery<ReconcileStatus>('status');

export const emptyTally = (): ReconcileTally => ({
  pages: 0,
  events: 0,
  started: 0,
  duplicates: 0,
  ignored: 0,
  rejected: 0,
});

/** `[from, until)` cut into consecutive slices of at most `sliceSeconds`, oldest first. */
export function reconcileSlices(
  fromSeconds: number,
  untilSeconds: number,
  sliceSeconds: number,
): { fromSeconds: number; untilSeconds: number }[] {
  const slices = [];
  for (let start = fromSeconds; start < untilSeconds; start += sliceSeconds) {
    slices.push({ fromSeconds: start, untilSeconds: Math.min(start + sliceSeconds, untilSeconds) });
  }
  return slices;
}

/** The types in groups of at most what Stripe accepts in one request. */
export function eventTypeGroups(types: readonly string[]): string[][] {
  const groups: string[][] = [];
  for (let i = 0; i < types.length; i += STRIPE_EVENT_TYPES_PER_REQUEST) {
    groups.push(types.slice(i, i + STRIPE_EVENT_TYPES_PER_REQUEST));
  }
  return groups;
}
