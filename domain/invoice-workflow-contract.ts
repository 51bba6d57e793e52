import { defineQuery } from '@temporalio/workflow';
import type { ReceiptState } from './purchase-workflow-contract';
import type { InvoiceSummary } from './stripe-billing-objects';
import type { InvoiceHoldCode } from './subscription-rules';

/** What the API (which starts them) and the worker agree on for invoice workflows. */

export const INVOICE_WORKFLOW_TYPE = 'invoiceWorkflow';

/** Input of one run: one `invoice.paid` (grant) or `invoice.payment_failed` (dunning) event. */
export interface InvoiceWorkflowInput {
  eventId: string;
  eventType: string;
  action: 'grant' | 'dunning';
  invoice: InvoiceSummary;
  timeouts: {
    /** How long to wait for the checkout session that links the subscription to an account. */
    link: string;
    /** How long a held invoice waits for a review decision (the `review` signal). */
    review: string;
    /** How long the receipt or dunning email keeps being retried. */
    receipt: string;
  };
}

/** Where the run is. Also the value of the `BillingStatus` search attribute. */
export type InvoiceStage =
  | 'checking'
  | 'awaiting_link'
  | 'held_for_review'
  | 'granting'
  | 'sending_receipt'
  | 'completed'
  | 'completed_receipt_failed'
  | 'already_granted'
  | 'not_granted'
  | 'rejected'
  | 'review_expired'
  | 'sending_dunning'
  | 'dunning_sent'
  | 'dunning_failed'
  | 'already_paid'
  | 'unlinked';

/** Answer of the `status` query. */
export interface InvoiceWorkflowStatus {
  stage: InvoiceStage;
  invoiceId: string;
  subscriptionId: string | null;
  accountId: string | null;
  credits: number | null;
  reasonCode: InvoiceHoldCode | null;
  reason: string | null;
  ledgerEntryId: number | null;
  email: ReceiptState;
}

export type InvoiceWorkflowResult = InvoiceWorkflowStatus;

export const invoiceStatusQuery = defineQuery<InvoiceWorkflowStatus>('status');
