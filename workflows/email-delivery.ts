import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReceiptState } from '../domain/purchase-workflow-contract';
import { databaseActivityOptions, receiptActivityOptions } from './activity-options';

const outbox = proxyActivities<Activities>(databaseActivityOptions);

/**
 * Delivers an email already queued in the outbox (receipt or notice) through the receipt
 * activity, retried until the deadline. A final failure is recorded for operators; it never
 * undoes the change the email reports.
 */
export async function deliverEmail(
  key: string,
  deadline: string,
): Promise<Extract<ReceiptState, 'sent' | 'failed'>> {
  const mail = proxyActivities<Activities>(receiptActivityOptions(deadline));
  try {
    await mail.sendReceipt({ receiptKey: key });
    return 'sent';
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    const cause = error.cause;
    const reason =
      cause instanceof ApplicationFailure
        ? `${cause.type ?? 'Error'}: ${cause.message}`
        : (cause?.message ?? error.message);
    await outbox.recordReceiptFailure({ receiptKey: key, reason });
    return 'failed';
  }
}
