import type { Duration } from '@temporalio/common';
import { condition, setHandler } from '@temporalio/workflow';
import { reviewSignal, type ReviewDecision } from './contract';

/**
 * The `review` signal of a run that can hold a payment for an operator. A decision counts only
 * while the run is asking for one; a late or repeated one is ignored.
 */
export function reviewDesk(isAsking: () => boolean) {
  let pending: ReviewDecision | null = null;
  setHandler(reviewSignal, (decision) => {
    if (isAsking() && pending === null) pending = decision;
  });
  return {
    /** The next decision, or null when none came within `timeout`. */
    async decision(timeout: Duration): Promise<ReviewDecision | null> {
      const decided = await condition(() => pending !== null, timeout);
      const decision = pending;
      pending = null;
      return decided ? decision : null;
    },
  };
}

/** Why a held payment closed without credits, in the words the API and the ledger show. */
export const reviewExpiredReason = (timeout: Duration) => `no review decision within ${timeout}`;
export const rejectionReason = (decision: ReviewDecision, heldReason: string) =>
  `rejected by ${decision.reviewer}: ${decision.note ?? heldReason}`;
