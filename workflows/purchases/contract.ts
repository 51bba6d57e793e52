import type { Duration } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import type { HoldReasonCode } from '../../domain/purchase-rules';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import type { ReceiptState } from '../email/contract';
import type { ReviewDecision } from '../reviews/contract';
import type { PurchaseGrant } from '../../domain/purchase-records';
import type { GrantOutcome, GrantRefusal } from '../../db/purchases/grants';

// Defined where their data lives; named here too, as the workflow's activities answer them.
export type { PurchaseGrant, GrantOutcome, GrantRefusal };

/**
 * What the API and the webhook (which start purchases and closed checkouts) and the worker (which
 * runs them) agree on.
 */

export const PURCHASE_WORKFLOW_TYPE = 'purchaseWorkflow';

/** Input of one purchase workflow run: one Stripe event about one checkout session. */
export interface PurchaseWorkflowInput {
  eventId: string;
  eventType: string;
  session: CheckoutSessionSummary;
  /** How long a held purchase waits for a review decision before it closes ungranted. */
  reviewTimeout: Duration;
  /** How long the receipt keeps being retried before it is recorded as failed. */
  receiptDeadline: Duration;
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
      /**
       * Who bought it (the checkout snapshot's account, else client_reference_id): the account an
       * approval credits. Null: nobody is known to have paid, and only a rejection closes it.
       * Absent in results recorded before the check named the buyer.
       */
      buyer?: string | null;
    };

/**
 * Validation and, when it allows, the grant, made by one activity: a valid purchase is granted
 * in the step that validated it. `granted` is null for anything that does not grant at once; a
 * grant the ledger refused comes back as a validation that holds the purchase, with the reason.
 */
export interface CheckedPurchase {
  validation: PurchaseValidation;
  granted: GrantOutcome | null;
}

// Checkouts that never pay.

export const CHECKOUT_CLOSED_WORKFLOW_TYPE = 'checkoutClosedWorkflow';

/** `checkout.session.async_payment_failed` or `checkout.session.expired`: mark, grant nothing. */
export interface CheckoutClosedWorkflowInput {
  eventId: string;
  eventType: string;
  outcome: 'payment_failed' | 'expired';
  session: CheckoutSessionSummary;
  /** How long the "payment failed" notice keeps being retried. */
  receiptDeadline: Duration;
}

/** Where the run is. Also the value of the `BillingStatus` search attribute. */
export type CheckoutClosedStage = 'recording' | 'sending_notice' | 'recorded' | 'already_completed';

/** Answer of the `status` query. */
export interface CheckoutClosedWorkflowStatus {
  stage: CheckoutClosedStage;
  checkoutSessionId: string;
  accountId: string | null;
  /** The purchase's status after this event (a completed purchase stays completed). */
  purchaseStatus: string | null;
  notice: ReceiptState;
}

export type CheckoutClosedWorkflowResult = CheckoutClosedWorkflowStatus;

export const checkoutClosedStatusQuery = defineQuery<CheckoutClosedWorkflowStatus>('status');
