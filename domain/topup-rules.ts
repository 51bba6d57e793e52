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

export type TopupStatus = 'pending' | 'charging' | 'succeeded' | 'failed' | 'refused';

/** A top-up as its grant decides on it: what was asked, and where it stands. */
export interface TopupToGrant extends TopupAsked {
  status: TopupStatus;
  failureCode: string | null;
}

/**
 * What a payment reported for a top-up does to it (see decideTopupGrant):
 * - `answer_granted`: granted before; answered as it was granted, nothing changes.
 * - `answer_settled`: refused before; that stands.
 * - `keep_failed`: failed before for a reason known, and the payment failed too: still failed,
 *   told and counted once.
 * - `fail`: the payment failed; the workflow records the failure (and tells the customer). Also
 *   when the top-up was recorded failed without knowing what became of its charge (Stripe could
 *   not be asked): the decline is news, recorded and told like any decline (failTopup).
 * - `refuse`: the payment does not match what was asked: recorded refused, nothing granted.
 * - `grant`: paid as asked. `afterFailure` when the top-up was recorded failed meanwhile (Stripe
 *   answered late, or the run gave up waiting): money taken becomes credits all the same, and that
 *   failure no longer counts.
 */
export type TopupGrantDecision =
  | { action: 'answer_granted' }
  | { action: 'answer_settled' }
  | { action: 'keep_failed' }
  | { action: 'fail'; code: string; message: string }
  | { action: 'refuse'; code: TopupRefusalCode; reason: string }
  | { action: 'grant'; afterFailure: boolean };

/** What the payment Stripe reports for a top-up does to it, from where the top-up stands. */
export function decideTopupGrant(
  topup: TopupToGrant,
  intent: PaymentIntentSummary,
  expectedLivemode: boolean,
): TopupGrantDecision {
  if (topup.status === 'succeeded') return { action: 'answer_granted' };
  const failedBefore = topup.status === 'failed';
  if (topup.status !== 'pending' && topup.status !== 'charging' && !failedBefore) {
    return { action: 'answer_settled' };
  }
  const check = checkTopupPayment(topup, intent, expectedLivemode);
  if (check.kind === 'failed') {
    if (failedBefore && !awaitsStripesAnswer(topup.failureCode)) return { action: 'keep_failed' };
    return { action: 'fail', code: check.code, message: check.message };
  }
  if (check.kind === 'refuse') return { action: 'refuse', code: check.code, reason: check.reason };
  return { action: 'grant', afterFailure: failedBefore };
}

/** The ledger reason of a top-up's grant. */
export const topupGrantReason = (packId: string | null): string =>
  `automatic top-up${packId ? `, pack ${packId}` : ''}`;

/** What a top-up's receipt calls what was bought. */
export const topupReceiptTitle = (credits: number): string =>
  `Automatic top-up: ${credits.toLocaleString('en-US')} credits`;

/** After a failed attempt: whether automatic top-up turns itself off. */
export const disablesAutoTopup = (consecutiveFailures: number, maxConsecutiveFailures: number) =>
  consecutiveFailures >= maxConsecutiveFailures;

/**
 * Failures that say nothing about the customer's card: Stripe could not be asked what became of
 * the charge, or the money was taken and the grant is still owed. The charge may have gone
 * through, so the customer is not offered a second payment, the failure is not counted toward
 * turning automatic top-up off, and no new top-up is charged until the balance is back above
 * the threshold (a late success that grants brings it there).
 *
 * The monthly cap: what the month's top-ups charged or may charge, in the cap's currency. Such a
 * failure counts against it like an open or granted top-up (its late success is granted whatever
 * the cap says, money taken becomes credits), until Stripe reports it declined; other failures
 * and refusals took nothing and do not count. Top-ups in another currency do not count: no rate
 * converts them, so a cap whose settings changed currency mid-month starts the month afresh in
 * the new one (the API says so at `monthlyCapCents`).
 */
export const OUTCOME_UNKNOWN_FAILURE_CODES = ['stripe_unavailable', 'grant_failed'] as const;
const OUTCOME_UNKNOWN_FAILURES: ReadonlySet<string> = new Set(OUTCOME_UNKNOWN_FAILURE_CODES);

export const chargeOutcomeUnknown = (failureCode: string): boolean =>
  OUTCOME_UNKNOWN_FAILURES.has(failureCode);

/**
 * A failure recorded because Stripe could not say what became of the charge: a decline Stripe
 * reports later is news for the customer (told and counted as any decline), where a failure of
 * the grant (the money was taken) or a decline known already has nothing more to learn from it.
 */
export const awaitsStripesAnswer = (failureCode: string | null): boolean =>
  failureCode === 'stripe_unavailable';

/**
 * Failures recorded without counting toward turning automatic top-up off: those whose charge may
 * have gone through, and top-ups the maintenance sweep found abandoned by their run.
 */
export const UNCOUNTED_FAILURE_CODES: readonly string[] = [...OUTCOME_UNKNOWN_FAILURE_CODES, 'abandoned'];
