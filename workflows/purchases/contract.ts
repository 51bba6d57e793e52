import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { HoldReasonCode } from '../../domain/purchase-rules';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import type { PurchaseGrant } from '../../domain/purchase-records';
import type { GrantOutcome } from '../../db/purchases/grants';

// Defined where their data lives; named here too, as the workflow's activities answer them.
export type { PurchaseGrant, GrantOutcome };

/** What both the API (which starts purchases) and the worker (which runs them) agree on. */

export const PURCHASE_WORKFLOW_TYPE = 'purchaseWorkflow';

/** Input of one purchase workflow run: one Stripe event about one checkout session. */
export interface PurchaseWorkflowInput {
  eventId: string;
  eventType: string;
  session: CheckoutSessionSummary;
  /** How long a held purchase waits for a review decision before it closes ungranted. */
  reviewTimeout: string;
  /** How long the receipt keeps being retried before it is recorded as failed. */
  receiptDeadline: string;
}

/** Where a purchase is. Also the value of the `PurchaseStatus` search attribute. */
export type PurchaseStage =
  | 'validating'
  | 'awaiting_payment'
  | 'held_for_review'
  | 'granting'
  | 'sending_receipt'
  | 'completed'
  | 'completed_receipt_failed'
  | 'already_granted'
  | 'rejected'
  | 'review_expired';

export type ReceiptState = 'not_applicable' | 'pending' | 'sent' | 'failed';

/** Answer of the `status` query. */
export interface PurchaseWorkflowStatus {
  stage: PurchaseStage;
  checkoutSessionId: string;
  accountId: string | null;
  credits: number | null;
  reasonCode: HoldReasonCode | null;
  reason: string | null;
  ledgerEntryId: number | null;
  receipt: ReceiptState;
  review: { decision: ReviewDecision['decision']; reviewer: string; note: string | null } | null;
}

/** Result of a finished purchase workflow. */
export type PurchaseWorkflowResult = Pick<
  PurchaseWorkflowStatus,
  'stage' | 'checkoutSessionId' | 'credits' | 'ledgerEntryId' | 'receipt' | 'reasonCode'
>;

/**
 * An operator's decision on a held purchase. `credits` is needed to approve only when the pack is
 * unknown; otherwise the catalog decides.
 */
export interface ReviewDecision {
  decision: 'approve' | 'reject';
  reviewer: string;
  note?: string;
  credits?: number;
}

export const reviewSignal = defineSignal<[ReviewDecision]>('review');
export const statusQuery = defineQuery<PurchaseWorkflowStatus>('status');

/** What the purchase check answers. */
export type PurchaseValidation =
  | { outcome: 'valid'; grant: PurchaseGrant }
  | { outcome: 'awaiting_payment' }
  | { outcome: 'already_granted'; ledgerEntryId: number | null }
  | {
      outcome: 'held';
      reasonCode: HoldReasonCode;
      reason: string;
      /** What approving would grant, when the pack is known; null means the reviewer says. */
      proposal: PurchaseGrant | null;
    };

/**
 * Validation and, when it allows, the grant, made by one activity: a valid purchase is granted
 * in the step that validated it. `granted` is null for anything that does not grant at once.
 */
export interface CheckedPurchase {
  validation: PurchaseValidation;
  granted: GrantOutcome | null;
}
