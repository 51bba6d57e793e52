import type { Duration } from '@temporalio/common';
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { FailureType } from '../../domain/failure-types';

/**
 * Database work: short attempts, retried with backoff for as long as a database outage could
 * reasonably last. The grant is idempotent by its ledger key, so a retry never credits twice.
 */
export const databaseActivityOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '7 days',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: [FailureType.AccountNotFound],
  },
};

/**
 * The same database work as local activities: run by the worker inside the workflow task, so a
 * step costs no round trip through the server. An attempt is short; past a minute of backoff the
 * SDK waits with a timer between attempts, so a long database outage is retried as patiently
 * as with the regular options.
 */
export const databaseLocalActivityOptions: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  scheduleToCloseTimeout: '7 days',
  retry: databaseActivityOptions.retry,
};

/** Email failures no retry would change: a permanent SMTP refusal, a message not in the outbox. */
export const RECEIPT_FINAL_ERRORS: readonly string[] = [
  FailureType.SmtpPermanentError,
  FailureType.OutboxMessageNotFound,
];

/**
 * Receipts: retried with backoff until the deadline; a permanent SMTP refusal is final at once.
 * Money never waits on this: it runs after the grant has committed.
 */
export function receiptActivityOptions(deadline: Duration): ActivityOptions {
  return {
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: deadline,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '10 minutes',
      nonRetryableErrorTypes: [...RECEIPT_FINAL_ERRORS],
    },
  };
}

/**
 * A receipt's first try, inside the workflow task that granted: one attempt, bounded below the
 * workflow task's 10 s timeout (the activity itself gives up after 3 s, and at once while SMTP is
 * known to be in trouble). Anything but success goes to the regular receipt activity and its
 * retries, so an SMTP outage never holds a workflow task for long.
 */
export const quickReceiptOptions: LocalActivityOptions = {
  startToCloseTimeout: '5 seconds',
  retry: { maximumAttempts: 1 },
};

/**
 * Maintenance sweeps: one attempt is bounded by the batch it handles; a failed run is retried
 * briefly, and the next scheduled run picks up whatever is left anyway.
 */
export const maintenanceActivityOptions: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  scheduleToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};
