import { defineSignal, defineUpdate } from '@temporalio/workflow';

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

/**
 * What a decision came to, as the run that applied it answers: the grant or the closing, and the
 * audit row written in the same transaction. `applied: false` means the run took the decision but
 * could not carry it out (the ledger refused the grant): the payment is still held, and
 * `reasonCode` and `reason` say why.
 */
export interface ReviewAnswer {
  decision: ReviewDecision['decision'];
  applied: boolean;
  /** The run's stage after the decision, as `PurchaseStatus` / `BillingStatus` show it. */
  stage: string;
  /** The credits granted (an applied approval), else null. */
  credits: number | null;
  ledgerEntryId: number | null;
  /** The audit log entry of the decision (null for a decision no activity recorded). */
  auditId: number | null;
  /** Why it was not applied (`balance_out_of_range`, `account_not_found`, …), else null. */
  reasonCode: string | null;
  /** Why it was not applied, or the reason a rejection closed the payment with. */
  reason: string | null;
}

/**
 * The decision as an Update: its validator refuses, before anything is written to the run's
 * history, a decision on a run that is not held, a malformed one, an approval that cannot grant
 * (no credits for an unknown pack or plan, nobody known to have paid) and a second decision while
 * one is being applied; the run then applies it and answers what really happened. A refusal is
 * an application failure whose type is an error code of domain/error-codes.ts in PascalCase.
 */
export const decideUpdate = defineUpdate<ReviewAnswer, [ReviewDecision]>('decide');

/**
 * The same decision as a signal, for runs of workflow code from before the update and for the
 * Temporal CLI. It answers nothing: a decision it cannot take (not held, one being applied,
 * malformed) is dropped; the audit row is written as for the update.
 */
export const reviewSignal = defineSignal<[ReviewDecision]>('review');
