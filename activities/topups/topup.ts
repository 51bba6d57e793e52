import { log } from '@temporalio/activity';
import Stripe from 'stripe';
import { saveCheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import {
  beginTopup,
  failAbandonedTopups,
  failTopup,
  findStripeCustomer,
  findTopup,
  grantTopup,
  recordTopupGrantOwed,
  recordTopupPaymentIntent,
  type Topup,
  type TopupFailureOutcome,
  type TopupGrantOutcome,
} from '../../db/topups/topups';
import { TOPUP_ABANDONED_AFTER_DAYS } from '../../workflows/topups/contract';
import { summarizePaymentIntent, type PaymentIntentSummary } from '../../stripe/payment-intent';
import { createCreditsCheckoutSession } from '../../stripe/checkout-sessions';
import { createOffSessionPayment, listSavedCards, retrievePaymentIntent } from '../../stripe/top-up-payments';
import type { Sql } from '../../db/client';
import { errors } from '../../domain/errors';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';

/** What a top-up asks of Stripe: behind an interface, so the worker wires the real client. */
export interface TopupPaymentGateway {
  /** The card saved on the customer for off-session use (the newest), or null. */
  savedCard(customerId: string): Promise<string | null>;
  /** Creates and confirms the off-session payment intent; a decline is an answer, not an error. */
  chargeOffSession(request: OffSessionCharge): Promise<ChargeAnswer>;
  retrievePaymentIntent(paymentIntentId: string): Promise<PaymentIntentSummary>;
  /** A Checkout session for the same credits, for the customer to pay on-session. */
  recoveryCheckout(request: RecoveryCheckout): Promise<{ id: string; url: string | null }>;
}

export interface OffSessionCharge {
  topupId: string;
  accountId: string;
  customerId: string;
  paymentMethodId: string;
  amountCents: number;
  currency: string;
}

export interface RecoveryCheckout {
  topupId: string;
  accountId: string;
  customerId: string | null;
  packId: string | null;
  credits: number;
  amountCents: number;
  currency: string;
  returnUrl: string;
}

export type ChargeAnswer =
  | { kind: 'created'; paymentIntent: PaymentIntentSummary }
  | { kind: 'declined'; code: string; message: string; paymentIntentId: string | null };

/** The top-up dependencies of the worker: null without a Stripe key (every top-up then fails). */
export interface TopupDependencies {
  payments: TopupPaymentGateway;
  /** Where the on-session Checkout of a failed top-up sends the customer back to. */
  returnUrl: string;
}

export function stripeTopupPayments(stripe: Stripe): TopupPaymentGateway {
  return {
    async savedCard(customerId) {
      const page = await listSavedCards(stripe, customerId);
      return page.data[0]?.id ?? null;
    },

    async chargeOffSession(request) {
      try {
        // Keyed by the top-up's own ID: a retried activity is the same request, answered the same.
        const intent = await createOffSessionPayment(stripe, request);
        return { kind: 'created', paymentIntent: summarizePaymentIntent(intent) };
      } catch (error) {
        // A decline or a card that needs the customer (authentication_required) is Stripe's
        // answer for this charge; so is a request Stripe refuses (no such card). Outages throw.
        if (
          error instanceof Stripe.errors.StripeCardError ||
          error instanceof Stripe.errors.StripeInvalidRequestError
        ) {
          const raw = error.raw as { payment_intent?: { id?: string } } | undefined;
          return {
            kind: 'declined',
            code: error.code ?? error.decline_code ?? 'card_error',
            message: error.message,
            paymentIntentId: raw?.payment_intent?.id ?? null,
          };
        }
        throw error;
      }
    },

    async retrievePaymentIntent(paymentIntentId) {
      return summarizePaymentIntent(await retrievePaymentIntent(stripe, paymentIntentId));
    },

    async recoveryCheckout(request) {
      const session = await createCreditsCheckoutSession(stripe, {
        accountId: request.accountId,
        packId: request.packId,
        credits: request.credits,
        amountCents: request.amountCents,
        currency: request.currency,
        productName: `${request.credits.toLocaleString('en-US')} credits`,
        payer: request.customerId ? { customerId: request.customerId } : null,
        saveCard: true,
        successUrl: request.returnUrl,
        cancelUrl: request.returnUrl,
        idempotencyKey: `topup-recovery:${request.topupId}`,
      });
      return { id: session.id, url: session.url };
    },
  };
}

export type TopupBegin =
  | { outcome: 'unknown' }
  | { outcome: 'settled'; status: string; ledgerEntryId: number | null; paymentIntentId: string | null }
  | {
      outcome: 'open';
      accountId: string;
      credits: number;
      amountCents: number;
      currency: string;
      paymentIntentId: string | null;
    };

export type TopupPaymentRequest =
  | { kind: 'submitted'; paymentIntentId: string }
  | { kind: 'declined'; code: string; message: string; paymentIntentId: string | null };

/** What the top-up activities use: the database, Stripe's payments (or none), the mode, the counters. */
export type TopupActivityDependencies = Pick<ActivityDependencies, 'sql' | 'topups' | 'metrics'> & {
  config: Pick<ActivityConfig, 'stripe'>;
};

/** Activities of the top-up workflow; each is idempotent on the top-up's ID. */
export function createTopupActivities<D extends TopupActivityDependencies>({
  sql,
  config,
  topups,
  metrics,
}: D) {
  return {
    async beginTopup(input: { topupId: string }): Promise<TopupBegin> {
      const topup = await beginTopup(sql, input.topupId);
      if (!topup) return { outcome: 'unknown' };
      if (topup.status !== 'charging') {
        return {
          outcome: 'settled',
          status: topup.status,
          ledgerEntryId: topup.ledgerEntryId,
          paymentIntentId: topup.paymentIntentId,
        };
      }
      return {
        outcome: 'open',
        accountId: topup.accountId,
        credits: topup.credits,
        amountCents: topup.amountCents,
        currency: topup.currency,
        paymentIntentId: topup.paymentIntentId,
      };
    },

    /** The off-session charge, once: Stripe's idempotency key is derived from the top-up ID. */
    async requestTopupPayment(input: { topupId: string }): Promise<TopupPaymentRequest> {
      const topup = await findTopup(sql, input.topupId);
      if (!topup) throw new Error(`top-up ${input.topupId} does not exist`);
      if (!topups) {
        return {
          kind: 'declined',
          code: 'stripe_not_configured',
          message: 'STRIPE_SECRET_KEY is not set',
          paymentIntentId: null,
        };
      }
      try {
        if (topup.paymentIntentId) {
          // A retry after the first attempt recorded its charge: that charge is the answer. The
          // idempotency key alone would not do: Stripe forgets it after a day, and a card saved
          // meanwhile makes the same key with other parameters an error.
          return answerOf(await topups.payments.retrievePaymentIntent(topup.paymentIntentId));
        }
        return await charge(sql, topup, topups);
      } catch (error) {
        throw refusedKey(error);
      }
    },

    /** Stripe's own record of the payment, when its event did not come in time. */
    async fetchTopupPayment(input: { paymentIntentId: string }): Promise<PaymentIntentSummary> {
      if (!topups) throw new Error('STRIPE_SECRET_KEY is not set');
      return topups.payments.retrievePaymentIntent(input.paymentIntentId);
    },

    async grantTopup(input: {
      topupId: string;
      workflowId: string;
      payment: PaymentIntentSummary;
    }): Promise<TopupGrantOutcome> {
      const outcome = await grantTopup(sql, { ...input, livemode: config.stripe.livemode });
      // Counted by the call that committed the grant, so a retry or a late run counts nothing.
      if (metrics && outcome.outcome === 'granted' && outcome.applied) {
        const topup = await findTopup(sql, input.topupId);
        if (topup) metrics.creditsGranted('purchase', topup.credits);
      }
      log.info('top-up settled', { topupId: input.topupId, outcome: outcome.outcome });
      return outcome;
    },

    /**
     * The link a customer pays a failed top-up with, on-session: a Checkout session for the same
     * credits and price, sold (snapshot) like any checkout, so that it is granted by the purchase
     * workflow. Null when Stripe cannot make one; the email then says to buy credits instead.
     */
    async createTopupRecoveryLink(input: { topupId: string }): Promise<{ url: string | null }> {
      const topup = await findTopup(sql, input.topupId);
      if (!topup || !topups) return { url: null };
      try {
        const session = await topups.payments.recoveryCheckout({
          topupId: topup.id,
          accountId: topup.accountId,
          customerId: await findStripeCustomer(sql, topup.accountId),
          packId: topup.packId,
          credits: topup.credits,
          amountCents: topup.amountCents,
          currency: topup.currency,
          returnUrl: topups.returnUrl,
        });
        await saveCheckoutSnapshot(sql, {
          id: session.id,
          accountId: topup.accountId,
          packId: topup.packId,
          credits: topup.credits,
          amountCents: topup.amountCents,
          currency: topup.currency,
          url: session.url,
          idempotencyKey: null,
          requestFingerprint: `topup-recovery:${topup.id}`,
        });
        return { url: session.url };
      } catch (error) {
        const refused =
          error instanceof Stripe.errors.StripeInvalidRequestError ||
          error instanceof Stripe.errors.StripeAuthenticationError ||
          error instanceof Stripe.errors.StripePermissionError;
        if (!refused) throw error;
        log.warn('no on-session link for a failed top-up', { topupId: topup.id, reason: error.message });
        return { url: null };
      }
    },

    async failTopup(input: {
      topupId: string;
      workflowId: string;
      code: string;
      message: string;
      recoveryUrl: string | null;
    }): Promise<TopupFailureOutcome> {
      const outcome = await failTopup(sql, input);
      log.warn('top-up failed', { topupId: input.topupId, code: input.code, ...outcome });
      return outcome;
    },

    /** A grant still refused after its retries while the money was taken: recorded owed, once. */
    async recordTopupGrantOwed(input: {
      topupId: string;
      workflowId: string;
      message: string;
    }): Promise<TopupFailureOutcome> {
      const outcome = await recordTopupGrantOwed(sql, input);
      log.error('top-up paid but its grant is refused: owed, retried by its run', {
        topupId: input.topupId,
        reason: input.message,
      });
      return outcome;
    },

    /** Open top-ups far older than any run (the maintenance sweep's safety net). */
    async failAbandonedTopups(): Promise<number> {
      const failed = await failAbandonedTopups(sql, TOPUP_ABANDONED_AFTER_DAYS);
      if (failed.length > 0) log.warn('abandoned top-ups recorded failed', { topupIds: failed });
      return failed.length;
    },
  };
}

/** The off-session charge of a top-up with its recorded price, and what it came to. */
async function charge(sql: Sql, topup: Topup, topups: TopupDependencies): Promise<TopupPaymentRequest> {
  const noCard = {
    kind: 'declined' as const,
    code: 'no_saved_card',
    message: 'no card is saved for off-session payments',
    paymentIntentId: null,
  };
  const customerId = await findStripeCustomer(sql, topup.accountId);
  if (!customerId) return noCard;
  const paymentMethodId = await topups.payments.savedCard(customerId);
  if (!paymentMethodId) return noCard;
  const answer = await topups.payments.chargeOffSession({
    topupId: topup.id,
    accountId: topup.accountId,
    customerId,
    paymentMethodId,
    amountCents: topup.amountCents,
    currency: topup.currency,
  });
  const paymentIntentId = answer.kind === 'created' ? answer.paymentIntent.id : answer.paymentIntentId;
  if (paymentIntentId) await recordTopupPaymentIntent(sql, topup.id, paymentIntentId);
  log.info('top-up payment requested', { topupId: topup.id, paymentIntentId, answer: answer.kind });
  return answer.kind === 'declined' ? answer : answerOf(answer.paymentIntent);
}

/** What a top-up's payment intent, as Stripe holds it, means for the workflow. */
function answerOf(intent: PaymentIntentSummary): TopupPaymentRequest {
  if (intent.status === 'requires_action' || intent.status === 'requires_payment_method') {
    return {
      kind: 'declined',
      code: intent.failureCode ?? 'authentication_required',
      message: intent.failureMessage ?? `the payment is ${intent.status}`,
      paymentIntentId: intent.id,
    };
  }
  return { kind: 'submitted', paymentIntentId: intent.id };
}

/** A key Stripe refuses (401, 403) does not heal in a day of retries: the top-up fails at once. */
function refusedKey(error: unknown): unknown {
  if (
    error instanceof Stripe.errors.StripeAuthenticationError ||
    error instanceof Stripe.errors.StripePermissionError
  ) {
    return errors.stripeRefused('the request', error.message);
  }
  return error;
}
