import type { PurchaseGrant } from './purchase-records';
import type { CheckoutSessionSummary } from '../stripe/objects';

/**
 * The money rules of a checkout purchase, shared by the workflow, the activities and the API.
 * Credits always come from the server (the snapshot taken when the session was created, else
 * the catalog), never from Stripe metadata, and go to the account that bought them; the amount
 * actually paid must match their price.
 */

export interface PackPrice {
  id: string;
  credits: number;
  priceCents: number;
  currency: string;
}

/** What the server sold for a session: its snapshot, or the catalog pack the session names. */
export interface Offer {
  packId: string | null;
  name: string;
  credits: number;
  priceCents: number;
  currency: string;
  /** The account the session was created for (snapshots only). */
  soldTo: string | null;
}

export function offerFromPack(pack: PackPrice & { name: string }): Offer {
  return {
    packId: pack.id,
    name: pack.name,
    credits: pack.credits,
    priceCents: pack.priceCents,
    currency: pack.currency,
    soldTo: null,
  };
}

export const HOLD_REASONS = {
  livemode_mismatch: 'the event livemode differs from the configured Stripe mode',
  mode_unsupported: 'the checkout session is not a one-time payment',
  account_missing: 'nobody is known to have bought it (no client_reference_id, no checkout snapshot)',
  account_unknown: 'the account that bought it does not exist',
  account_mismatch: 'the session names another account than the one that bought it',
  pack_missing: 'the session names no pack (metadata.packId)',
  pack_unknown: 'the pack named by the session is not in the catalog',
  pack_mismatch: 'the session names another pack than the one it was sold with',
  amount_mismatch: 'the amount paid differs from the pack price',
  currency_mismatch: 'the currency paid differs from the pack currency',
  credits_mismatch: 'metadata.credits differs from the credits that were sold',
  payment_status_unexpected: 'the session reports no payment required for a paid pack',
  balance_out_of_range: 'the grant would take the balance past 2^53 − 1 credits, which the ledger refuses',
} as const;

export type HoldReasonCode = keyof typeof HOLD_REASONS;

export type PurchaseCheck =
  | { kind: 'grant'; accountId: string; offer: Offer; credits: number }
  | { kind: 'await_payment' }
  | { kind: 'hold'; code: HoldReasonCode; reason: string };

function hold(code: HoldReasonCode, detail?: string): { kind: 'hold'; code: HoldReasonCode; reason: string } {
  return { kind: 'hold', code, reason: detail ? `${HOLD_REASONS[code]} (${detail})` : HOLD_REASONS[code] };
}

/**
 * Who bought a session: the server's own record of it, never Stripe metadata. That is the
 * account the checkout snapshot was taken for, else `client_reference_id`, which this service
 * sets when it opens a session and nobody can change afterwards. Credits, the review desk's
 * listing and an approval all go to this account; metadata naming another is tampering.
 */
export function buyerOf(session: CheckoutSessionSummary, offer: Offer | null): string | null {
  return offer?.soldTo ?? session.accountId;
}

export function checkCheckoutPurchase(input: {
  session: CheckoutSessionSummary;
  offer: Offer | null;
  /** Whether the buyer's account (see `buyerOf`) exists. */
  accountExists: boolean;
  expectedLivemode: boolean;
}): PurchaseCheck {
  const { session, offer } = input;
  if (session.livemode !== input.expectedLivemode) return hold('livemode_mismatch');
  if (session.mode !== 'payment') return hold('mode_unsupported', `mode ${session.mode}`);
  const buyer = buyerOf(session, offer);
  const claimed = session.metadataAccountId ?? null;
  if (!buyer) {
    const claim = claimed ? `metadata names ${claimed}` : undefined;
    return hold('account_missing', claim);
  }
  if (session.accountId !== null && session.accountId !== buyer) {
    return hold('account_mismatch', `sold to ${buyer}, client_reference_id ${session.accountId}`);
  }
  if (claimed !== null && claimed !== buyer) {
    return hold('account_mismatch', `bought by ${buyer}, metadata names ${claimed}`);
  }
  if (!input.accountExists) return hold('account_unknown', buyer);
  if (!offer) return session.packId ? hold('pack_unknown', session.packId) : hold('pack_missing');
  if (offer.soldTo !== null && session.packId !== offer.packId) {
    return hold(
      'pack_mismatch',
      `sold ${offer.packId ?? 'custom credits'}, session names ${String(session.packId)}`,
    );
  }
  if (session.amountTotal !== offer.priceCents) {
    return hold('amount_mismatch', `paid ${String(session.amountTotal)}, price ${offer.priceCents}`);
  }
  if (session.currency?.toLowerCase() !== offer.currency) {
    return hold('currency_mismatch', `paid in ${String(session.currency)}, priced in ${offer.currency}`);
  }
  // metadata.credits is never used to grant, but a value that disagrees with what was sold is
  // a sign of tampering with what the customer was shown, so it goes to a person.
  if (session.claimedCredits !== null && session.claimedCredits !== String(offer.credits)) {
    return hold('credits_mismatch', `metadata says ${session.claimedCredits}, sold ${offer.credits}`);
  }
  if (session.paymentStatus === 'unpaid') return { kind: 'await_payment' };
  if (session.paymentStatus !== 'paid') return hold('payment_status_unexpected');
  return { kind: 'grant', accountId: buyer, offer, credits: offer.credits };
}

/**
 * The grant of a checkout session, in one place: what was sold (from the snapshot or catalog,
 * or what an operator approved) to whom, and the payment's own facts. Never from metadata.
 */
export function purchaseGrantFor(
  session: CheckoutSessionSummary,
  sold: { accountId: string; packId: string | null; packName: string; credits: number },
  workflowId: string,
  approvedBy?: string,
): PurchaseGrant {
  return {
    checkoutSessionId: session.id,
    accountId: sold.accountId,
    packId: sold.packId,
    packName: sold.packName,
    credits: sold.credits,
    amountCents: session.amountTotal,
    currency: session.currency,
    livemode: session.livemode,
    paymentIntentId: session.paymentIntentId,
    workflowId,
    ...(approvedBy === undefined ? {} : { approvedBy }),
  };
}
