import { defineQuery } from '@temporalio/workflow';

/** What the worker (which schedules it) and the maintenance workflow agree on. */

export const MAINTENANCE_WORKFLOW_TYPE = 'maintenanceWorkflow';
export const RESERVATION_TIMEOUT_WORKFLOW_TYPE = 'reservationTimeoutWorkflow';

/** The schedule and the workflow ID of its runs, per task queue. */
export const maintenanceScheduleId = (taskQueue: string) => `credits-maintenance:${taskQueue}`;

/** Input of a run: none from the schedule, which sweeps everything. */
export interface MaintenanceInput {
  /**
   * Starts only these accounts' balance follow-ups (an operator's run for some accounts). The
   * tests share one database between files whose workers and mail servers differ: their runs
   * name their own accounts, so that no file starts another's follow-ups on its own worker.
   */
  followUpAccounts?: string[];
  /** Records only these accounts' expiry notices (as `followUpAccounts`, for the same reason). */
  expiryNoticeAccounts?: string[];
}

/** One run: what it expired, released, swept and started. */
export interface MaintenanceResult {
  grantsExpired: number;
  creditsExpired: number;
  reservationsReleased: number;
  emails: { delivered: number; failed: number; waiting: number };
  /** Balance follow-ups whose workflow the run started (or found started). */
  followUpsStarted?: number;
  /** Expiry notices the run recorded (each grant's once, whichever run that is). */
  expiryNotices?: number;
  /** Rows past their retention the run deleted (absent from runs recorded before the sweep). */
  recordsDeleted?: {
    outboundEvents: number;
    emails: number;
    rejectedEvents: number;
    /** Usage events whose properties were cleared (absent before usage). */
    usageProperties?: number;
  };
}

/** The TTL timer of one hold; the workflow ID is `reservation:<id>`. */
export interface ReservationTimeoutInput {
  accountId: string;
  reservationId: string;
  /** When the hold ends, in epoch milliseconds. */
  expiresAtMs: number;
}

export const reservationWorkflowId = (reservationId: string) => `reservation:${reservationId}`;

export const reservationStatusQuery = defineQuery<{ stage: 'waiting' | 'settled'; status: string | null }>(
  'status',
);
