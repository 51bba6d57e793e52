import type { PaymentIntentSummary } from '../stripe/payment-intent';

/**
 * The money rules of an automatic top-up. What was asked is the top-up row written when the
 * balance crossed the threshold; what Stripe reports must match it before anything is granted.
 */

export interface TopupAsked {
  id: string;
  accountId: string;
  credits: number;
  amountCents: number;
  currency: string;
  paymentIntentId: string | null;
}

export const TOPUP_REFUSALS = {
  livemode_mismatch: 'the payment livemode differs from the configured Stripe mode',
  payment_intent_mismatch: 'the payment intent is not the one this top-up created',
  topup_mismatch: 'the payment intent names another top-up or account',
  amount_mismatch: 'the amount received differs from the top-up price',
  currency_mismatch: 'the currency paid differs from the top-up currency',
} as const;

export type TopupRefusalCode = keyof typeof TOPUP_REFUSALS;

export type TopupPaymentCheck =
  | { kind: 'grant' }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'refuse'; code: TopupRefusalCode; reason: string };

/** Whether a payment intent reported for a top-up grants it, failed, or must be refused. */
export function checkTopupPayment(
  asked: TopupAsked,
  intent: PaymentIntentSummary,
  expectedLivemode: boolean,
): TopupPaymentCheck {
  const refuse = (code: TopupRefusalCode, detail?: string) => ({
    kind: 'refuse' as const,
    code,
    reason: detail ? `${TOPUP_REFUSALS[code]} (${detail})` : TOPUP_REFUSALS[code],
  });
  if (intent.livemode !== expectedLivemode) return refuse('livemode_mismatch');
  if (asked.paymentIntentId !== null && intent.id !== asked.paymentIntentId) {
    return refuse('payment_intent_mismatch', `${intent.id}, created ${asked.paymentIntentId}`);
  }
  if (intent.topupId !== asked.id || intent.accountId !== asked.accountId) return refuse('topup_mismatch');
  if (intent.status !== 'succeeded') {
    return {
      kind: 'failed',
      code: intent.failureCode ?? intent.status,
      message: intent.failureMessage ?? `the payment is ${intent.status}`,
    };
  }
  if (intent.amountReceived !== asked.amountCents) {
    return refuse('amount_mismatch', `received ${intent.amountReceived}, price ${asked.amountCents}`);
  }
  if (intent.currency !== asked.currency) {
    return refuse('currency_mismatch', `paid in ${intent.currency}, priced in ${asked.currency}`);
  }
  return { kind: 'grant' };
}

/** After a failed attempt: whether automatic top-up turns itself off. */
export const disablesAutoTopup = (consecutiveFailures: number, maxConsecutiveFailures: number) =>
  consecutiveFailures >= maxConsecutiveFailures;

/**
 * Failures that say nothing about the customer's card: Stripe could not be asked what became of
 * the charge, or the money was taken and the grant is still owed. The charge may have gone
 * through, so the customer is not offered a second payment, the failure is not counted toward
 * turning automatic top-up off, and no new top-up is charged until the balance is back above
 * the threshold (a late success that grants brings it there).
 */
export const OUTCOME_UNKNOWN_FAILURE_CODES = ['stripe_unavailable', 'grant_failed'] as const;
const OUTCOME_UNKNOWN_FAILURES: ReadonlySet<string> = new Set(OUTCOME_UNKNOWN_FAILURE_CODES);

export const chargeOutcomeUnknown = (failureCode: string): boolean =>
  OUTCOME_UNKNOWN_FAILURES.has(failureCode);
