import { defineSignal } from '@temporalio/workflow';

/**
 * What the review desk (the API) and the runs that hold a payment for review (purchases and
 * subscription invoices) agree on.
 */

/**
 * An operator's decision on a held payment. `credits` is needed to approve only when the pack
 * (or plan) is unknown; otherwise the catalog decides.
 */
export interface ReviewDecision {
  decision: 'approve' | 'reject';
  reviewer: string;
  note?: string;
  credits?: number;
}

export const reviewSignal = defineSignal<[ReviewDecision]>('review');
