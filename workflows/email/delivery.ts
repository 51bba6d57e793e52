import type { Duration } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
} from '@temporalio/workflow';
import type { createEmailActivities } from '../../activities/email/email';
import type { ReceiptState } from './contract';
import { applicationFailureOf } from '../shared/activity-failures';
import {
  databaseActivityOptions,
  quickReceiptOptions,
  RECEIPT_FINAL_ERRORS,
  receiptActivityOptions,
} from '../shared/activity-options';

type EmailActivities = ReturnType<typeof createEmailActivities>;

const outbox = proxyActivities<EmailActivities>(databaseActivityOptions);
const quickMail = proxyLocalActivities<EmailActivities>(quickReceiptOptions);

/**
 * One attempt at an email already queued in the outbox, as a local activity in the current
 * workflow task. `retry` (nothing recorded) hands the email to `deliverEmail`; the outbox row's
 * lock keeps an attempt still in flight and its retry from both sending. A refusal that no retry
 * would change (a permanent SMTP answer) is final here as it is there: recorded, not retried.
 */
export async function tryEmailInThisTask(
  key: string,
): Promise<Extract<ReceiptState, 'sent' | 'failed'> | 'retry'> {
  try {
    await quickMail.sendReceipt({ receiptKey: key });
    return 'sent';
  } catch (error) {
    if (isCancellation(error)) throw error;
    const failure = applicationFailureOf(error);
    if (!failure || !RECEIPT_FINAL_ERRORS.includes(failure.type ?? '')) return 'retry';
    await recordFailure(key, failure);
    return 'failed';
  }
}

/**
 * Delivers an email already queued in the outbox (receipt or notice) through the receipt
 * activity, retried until the deadline. A final failure is recorded for operators; it never
 * undoes the change the email reports.
 */
export async function deliverEmail(
  key: string,
  deadline: Duration,
): Promise<Extract<ReceiptState, 'sent' | 'failed'>> {
  const mail = proxyActivities<EmailActivities>(receiptActivityOptions(deadline));
  try {
    await mail.sendReceipt({ receiptKey: key });
    return 'sent';
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    await recordFailure(key, error.cause ?? error);
    return 'failed';
  }
}

async function recordFailure(key: string, cause: Error): Promise<void> {
  const reason =
    cause instanceof ApplicationFailure ? `${cause.type ?? 'Error'}: ${cause.message}` : cause.message;
  await outbox.recordReceiptFailure({ receiptKey: key, reason });
}
