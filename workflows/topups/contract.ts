import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { PaymentIntentSummary } from '../../stripe/payment-intent';
import type { LowBalanceNoticeFacts } from '../../credits/index';

/** What the API and the webhook (which start and signal top-ups) and the worker agree on. */

export const TOPUP_WORKFLOW_TYPE = 'topupWorkflow';
export const LOW_BALANCE_NOTICE_WORKFLOW_TYPE = 'lowBalanceNoticeWorkflow';

/** One top-up, one workflow: `topup:<topup ID>`. The database allows one open top-up per account. */
export const topupWorkflowId = (topupId: string) => `topup:${topupId}`;

/**
 * A success that arrived after its top-up's run ended runs again under the payment intent's ID,
 * so that the money becomes credits once however often the event is delivered or reconciled.
 */
export const topupLatePaymentWorkflowId = (paymentIntentId: string) => `topup-payment:${paymentIntentId}`;

/**
 * A decline heard after its top-up's run ended runs under an ID of its own (a success of the same
 * payment intent may still come), so that a top-up left unknown is told declined once.
 */
export const topupLateDeclineWorkflowId = (paymentIntentId: string) => `topup-decline:${paymentIntentId}`;

/** Input of a top-up run: the row written when the balance crossed the threshold. */
export interface TopupWorkflowInput {
  topupId: string;
  accountId: string;
  /**
   * Set on a run for a payment heard after the top-up's own run ended: it grants a success, or
   * records a decline that settles a top-up whose charge was left unknown.
   */
  latePayment?: TopupPaymentSignal;
}

/**
 * How long a run waits for Stripe's `payment_intent.*` event before it asks Stripe for the
 * payment intent itself (a lost event must not leave a charged customer without credits).
 */
export const TOPUP_PAYMENT_EVENT_WAIT = '1 day';
/** How many such waits a payment still `processing` gets before the top-up is recorded as failed. */
export const TOPUP_PAYMENT_MAX_WAITS = 7;
/** How long a top-up's receipt or notice keeps being retried. */
export const TOPUP_EMAIL_DEADLINE = '3 days';
/**
 * Past this long without a change an open top-up has no run left (charge, waits and asks, grant
 * or failure, and all their retries add up to about 45 days at worst): the maintenance sweep
 * records it failed. Well past that worst case, so a slow run is never swept.
 */
export const TOPUP_ABANDONED_AFTER_DAYS = 60;

export type TopupStage =
  | 'starting'
  | 'charging'
  | 'awaiting_payment_event'
  | 'granting'
  | 'sending_receipt'
  | 'succeeded'
  | 'refused'
  | 'recording_failure'
  | 'sending_failure_notice'
  | 'failed'
  | 'already_settled'
  | 'unknown_topup';

/** Answer of the `status` query; also, as `stage`, the `BillingStatus` search attribute. */
export interface TopupWorkflowStatus {
  stage: TopupStage;
  topupId: string;
  accountId: string | null;
  credits: number | null;
  amountCents: number | null;
  currency: string | null;
  paymentIntentId: string | null;
  /** Stripe's decline code (`card_declined`, `authentication_required`…) or our refusal reason. */
  failureCode: string | null;
  reason: string | null;
  ledgerEntryId: number | null;
  /** Whether this failure turned automatic top-up off for the account. */
  autoTopupDisabled: boolean;
  email: 'not_applicable' | 'pending' | 'sent' | 'failed';
}

export type TopupWorkflowResult = Pick<
  TopupWorkflowStatus,
  'stage' | 'topupId' | 'paymentIntentId' | 'failureCode' | 'ledgerEntryId' | 'autoTopupDisabled' | 'email'
>;

/** A Stripe event about a top-up's payment intent, routed here by the webhook. */
export interface TopupPaymentSignal {
  eventId: string;
  eventType: string;
  paymentIntent: PaymentIntentSummary;
}

export const topupPaymentSignal = defineSignal<[TopupPaymentSignal]>('payment');
export const topupStatusQuery = defineQuery<TopupWorkflowStatus>('status');

/** Input of the workflow that queues and delivers one low-balance notice. */
export interface LowBalanceNoticeInput {
  accountId: string;
  /** The notice's email key, which is also the workflow's ID. */
  emailKey: string;
  /**
   * What the crossing reported, for the email. Absent from runs of follow-ups recorded before
   * notices were queued by their workflow: their email was queued with the follow-up.
   */
  notice?: LowBalanceNoticeFacts;
}

export const lowBalanceNoticeStatusQuery = defineQuery<{
  stage: 'sending' | 'sent' | 'failed';
  accountId: string | null;
  emailKey: string;
}>('status');
