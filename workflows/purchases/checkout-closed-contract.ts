import { defineQuery } from '@temporalio/workflow';
import type { ReceiptState } from './contract';
import type { CheckoutSessionSummary } from '../../stripe/objects';

/** What the API and the worker agree on for checkouts that never pay. */

export const CHECKOUT_CLOSED_WORKFLOW_TYPE = 'checkoutClosedWorkflow';

/** `checkout.session.async_payment_failed` or `checkout.session.expired`: mark, grant nothing. */
export interface CheckoutClosedWorkflowInput {
  eventId: string;
  eventType: string;
  outcome: 'payment_failed' | 'expired';
  session: CheckoutSessionSummary;
  /** How long the "payment failed" notice keeps being retried. */
  receiptDeadline: string;
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
