import { defineQuery } from '@temporalio/workflow';
import type { ReceiptState } from '../purchases/contract';
import type { InvoiceSummary } from '../../stripe/billing-objects';
import type { InvoiceHoldCode } from '../../domain/subscription-rules';
import type { InvoiceGrant, InvoiceGrantOutcome } from '../../db/subscriptions/invoices';

// Defined where their data lives; named here too, as the workflow's activities answer them.
export type { InvoiceGrant, InvoiceGrantOutcome };

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

/** What the invoice check answers. */
export type InvoiceCheckResult =
  | { outcome: 'grant'; grant: InvoiceGrant }
  | { outcome: 'already_granted'; ledgerEntryId: number | null }
  | { outcome: 'no_grant'; reason: string }
  | { outcome: 'await_link' }
  | { outcome: 'hold'; code: InvoiceHoldCode; reason: string; accountId: string | null };
