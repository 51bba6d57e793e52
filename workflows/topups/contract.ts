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
  /**
   * Set on a run continued as new while it retried a grant the database kept refusing after the
   * money was taken: it goes on retrying that payment's grant where the run before stopped.
   */
  grantOwed?: TopupGrantOwed;
}

/** Where a run retrying an owed grant stopped: the payment, the tries so far, whether it was recorded. */
export interface TopupGrantOwed {
  payment: PaymentIntentSummary;
  attempts: number;
  recorded: boolean;
}

/**
 * How long a run waits for Stripe's `payment_intent.*` event before it asks Stripe for the
 * payment intent itself (a lost event must not leave a charged customer without credits).
 */
export const TOPUP_PAYMENT_EVENT_WAIT = '1 day';
/** How many such waits a payment still `processing` gets before the top-up is recorded as failed. */
export const TOPUP_PAYMENT_MAX_WAITS = 7;
/**
 * A grant the database still refuses after its activity's retries (days of an outage, or a
 * refusal no retry changes, such as a balance out of range) while the money was taken: the run
 * records the grant owed and tries again, after a pause that doubles from the first to the
 * longest, for as long as it takes. The ledger key of the top-up makes every try the same grant.
 */
export const TOPUP_GRANT_RETRY_FIRST_PAUSE_MS = 60 * 60 * 1000;
export const TOPUP_GRANT_RETRY_LONGEST_PAUSE_MS = 24 * 60 * 60 * 1000;
/** Tries of an owed grant in one run before it continues as new (a history stays small). */
export const TOPUP_GRANT_RETRIES_PER_RUN = 40;
/** How long a top-up's receipt or notice keeps being retried. */
export const TOPUP_EMAIL_DEADLINE = '3 days';
/**
 * Past this long without a change an open top-up has no run left (charge, waits and asks, grant
 * or failure, and all their retries add up to about 45 days at worst; a grant still refused by
 * then is recorded owed, no longer open, while its run keeps retrying it): the maintenance sweep
 * records it failed. Well past that worst case, so a slow run is never swept.
 */
export const TOPUP_ABANDONED_AFTER_DAYS = 60;

export type TopupStage =
  | 'starting'
  | 'charging'
  | 'awaiting_payment_event'
  | 'granting'
  /** The money was taken and the grant keeps being refused: recorded owed, tried again and again. */
  | 'grant_retrying'
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
