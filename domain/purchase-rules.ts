import type { CheckoutSessionSummary } from './stripe-objects';

/**
 * The money rules of a checkout purchase, in one pure module shared by the workflow, the
 * activities and the API. Credits always come from the server's catalog, never from Stripe
 * metadata; the amount actually paid must match what the catalog charges for them.
 */

export interface PackPrice {
  id: string;
  credits: number;
  priceCents: number;
  currency: string;
}

export const HOLD_REASONS = {
  livemode_mismatch: 'the event livemode differs from the configured Stripe mode',
  mode_unsupported: 'the checkout session is not a one-time payment',
  account_missing: 'the session names no account (metadata.accountId or client_reference_id)',
  account_unknown: 'the account named by the session does not exist',
  pack_missing: 'the session names no pack (metadata.packId)',
  pack_unknown: 'the pack named by the session is not in the catalog',
  amount_mismatch: 'the amount paid differs from the pack price',
  currency_mismatch: 'the currency paid differs from the pack currency',
  credits_mismatch: 'metadata.credits differs from the credits the pack grants',
  payment_status_unexpected: 'the session reports no payment required for a paid pack',
} as const;

export type HoldReasonCode = keyof typeof HOLD_REASONS;

export type PurchaseCheck<P extends PackPrice = PackPrice> =
  | { kind: 'grant'; accountId: string; pack: P; credits: number }
  | { kind: 'await_payment' }
  | { kind: 'hold'; code: HoldReasonCode; reason: string };

function hold(code: HoldReasonCode, detail?: string): { kind: 'hold'; code: HoldReasonCode; reason: string } {
  return { kind: 'hold', code, reason: detail ? `${HOLD_REASONS[code]} (${detail})` : HOLD_REASONS[code] };
}

export function checkCheckoutPurchase<P extends PackPrice>(input: {
  session: CheckoutSessionSummary;
  pack: P | null;
  accountExists: boolean;
  expectedLivemode: boolean;
}): PurchaseCheck<P> {
  const { session, pack } = input;
  if (session.livemode !== input.expectedLivemode) return hold('livemode_mismatch');
  if (session.mode !== 'payment') return hold('mode_unsupported', `mode ${session.mode}`);
  if (!session.accountId) return hold('account_missing');
  if (!input.accountExists) return hold('account_unknown', session.accountId);
  if (!session.packId) return hold('pack_missing');
  if (!pack) return hold('pack_unknown', session.packId);
  if (session.amountTotal !== pack.priceCents) {
    return hold('amount_mismatch', `paid ${String(session.amountTotal)}, price ${pack.priceCents}`);
  }
  if (session.currency?.toLowerCase() !== pack.currency) {
    return hold('currency_mismatch', `paid in ${String(session.currency)}, priced in ${pack.currency}`);
  }
  // metadata.credits is never used to grant, but a value that disagrees with the catalog is
  // a sign of tampering with what the customer was shown, so it goes to a person.
  if (session.claimedCredits !== null && session.claimedCredits !== String(pack.credits)) {
    return hold('credits_mismatch', `metadata says ${session.claimedCredits}, pack grants ${pack.credits}`);
  }
  if (session.paymentStatus === 'unpaid') return { kind: 'await_payment' };
  if (session.paymentStatus !== 'paid') return hold('payment_status_unexpected');
  return { kind: 'grant', accountId: session.accountId, pack, credits: pack.credits };
}
