import type { Duration } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import type { InvoiceSummary, SubscriptionSummary } from '../../stripe/billing-objects';
import type { InvoiceHoldCode } from '../../domain/subscription-rules';
import type { ReceiptState } from '../email/contract';
import type { InvoiceGrant, InvoiceGrantOutcome } from '../../db/subscriptions/invoices';
import type { GrantRefusal } from '../../db/purchases/grants';

// Defined where their data lives; named here too, as the workflow's activities answer them.
export type { InvoiceGrant, InvoiceGrantOutcome, GrantRefusal };

/**
 * What the webhook (which starts them) and the worker agree on for the two workflows of
 * subscriptions: the subscription's own (links and states) and its invoices' (credits, dunning).
 */

export const SUBSCRIPTION_WORKFLOW_TYPE = 'subscriptionWorkflow';

/** A subscription-mode checkout session: who the subscription belongs to. Grants nothing. */
export interface SubscriptionLink {
  subscriptionId: string;
  accountId: string | null;
  customerId: string | null;
  checkoutSessionId: string;
  livemode: boolean;
}

/** Input of one run: one Stripe event that links a subscription or reports its state. */
export type SubscriptionWorkflowInput = {
  eventId: string;
  eventType: string;
  /** `created` of the Stripe event (Unix seconds): orders the states of a subscription. */
  eventCreated: number;
  /** How long the "subscription ended" notice keeps being retried. */
  receiptDeadline: Duration;
} & ({ action: 'link'; link: SubscriptionLink } | { action: 'sync'; subscription: SubscriptionSummary });

/** Where the run is. Also the value of the `BillingStatus` search attribute. */
export type SubscriptionStage =
  | 'linking'
  | 'syncing'
  | 'sending_notice'
  | 'linked'
  | 'already_linked'
  | 'link_conflict'
  | 'account_unknown'
  | 'synced'
  | 'stale_state';

/** Answer of the `status` query. */
export interface SubscriptionWorkflowStatus {
  stage: SubscriptionStage;
  subscriptionId: string;
  accountId: string | null;
  /** The subscription's status and plan as stored after this event (newest state wins). */
  subscriptionStatus: string | null;
  planId: string | null;
  reason: string | null;
  notice: ReceiptState;
}

export type SubscriptionWorkflowResult = SubscriptionWorkflowStatus;

export const subscriptionStatusQuery = defineQuery<SubscriptionWorkflowStatus>('status');

// Subscription invoices.

export const INVOICE_WORKFLOW_TYPE = 'invoiceWorkflow';

/** Input of one run: one `invoice.paid` (grant) or `invoice.payment_failed` (dunning) event. */
export interface InvoiceWorkflowInput {
  eventId: string;
  eventType: string;
  action: 'grant' | 'dunning';
  invoice: InvoiceSummary;
  timeouts: {
    /** How long to wait for the checkout session that links the subscription to an account. */
    link: Duration;
    /** How long a held invoice waits for a review decision (the `decide` update or `review` signal). */
    review: Duration;
    /** How long the receipt or dunning email keeps being retried. */
    receipt: Duration;
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

/**
 * What the invoice check answers. A check made for a reviewer's approval that leads to no grant
 * says which audit entry recorded the attempt (`auditId`).
 */
export type InvoiceCheckResult = (
  | { outcome: 'grant'; grant: InvoiceGrant }
  | { outcome: 'already_granted'; ledgerEntryId: number | null }
  | { outcome: 'no_grant'; reason: string }
  | { outcome: 'await_link' }
  | { outcome: 'hold'; code: InvoiceHoldCode; reason: string; accountId: string | null }
) & { auditId?: number | null };
