/**
 * How refunds and disputes take credits back from a granted purchase. Money is compared with
 * money (cents refunded against cents paid) and credits with credits (what is revoked against
 * what was granted); the only bridge is the proportion below.
 *
 * Each event updates the purchase's facts (the largest cumulative refund seen, the dispute's
 * state), and the credits revoked from the purchase are moved to what those facts call for.
 * Facts only grow (refund totals) or move forward (dispute open → won/lost), so any order and
 * any number of deliveries end in the same place, and nothing is ever revoked twice.
 */

export type DisputeState = 'open' | 'won' | 'lost';

export interface PurchaseTerms {
  /** Credits the purchase granted. */
  credits: number;
  /** What was paid for them, in minor units (null if unknown). */
  amountCents: number | null;
}

export interface ReversalFacts {
  /** The largest cumulative `amount_refunded` seen for the purchase's charge, in minor units. */
  refundedCents: number;
  disputeId: string | null;
  disputeState: DisputeState | null;
}

export const NO_REVERSAL: ReversalFacts = { refundedCents: 0, disputeId: null, disputeState: null };

/**
 * The proration rule: credits in proportion to the share of the payment refunded, rounded down
 * (the customer keeps a fraction of a credit, never the business), and all of them once the
 * whole payment is refunded. Monotonic in the refunded amount, so partial refunds add up to at
 * most the credits granted.
 */
export function creditsForRefund(terms: PurchaseTerms, refundedCents: number): number {
  if (refundedCents <= 0) return 0;
  const paid = terms.amountCents;
  if (paid === null || paid <= 0 || refundedCents >= paid) return terms.credits;
  return Number((BigInt(terms.credits) * BigInt(refundedCents)) / BigInt(paid));
}

/** Credits that should be revoked from the purchase, given everything known about it. */
export function creditsToRevoke(terms: PurchaseTerms, facts: ReversalFacts): number {
  // An open or lost dispute took the whole payment back; a won one gave it back.
  if (facts.disputeState === 'open' || facts.disputeState === 'lost') return terms.credits;
  return Math.min(terms.credits, creditsForRefund(terms, facts.refundedCents));
}

/** Cumulative totals only grow: an older (smaller) total arriving late changes nothing. */
export function withRefundTotal(facts: ReversalFacts, amountRefunded: number): ReversalFacts {
  return { ...facts, refundedCents: Math.max(facts.refundedCents, amountRefunded) };
}

/** Dispute statuses on `charge.dispute.closed` that leave the money with the merchant. */
const KEPT_BY_MERCHANT = new Set(['won', 'warning_closed', 'prevented']);

export type DisputeChange = { phase: 'opened' } | { phase: 'closed'; status: string };

/**
 * A dispute moves forward only: a closed one stays closed, so a `created` event delivered after
 * the `closed` one cannot reopen it. A charge has at most one dispute; another dispute ID for
 * the same purchase is reported, not applied.
 */
export function withDispute(
  facts: ReversalFacts,
  disputeId: string,
  change: DisputeChange,
): { facts: ReversalFacts; conflict: boolean } {
  if (facts.disputeId !== null && facts.disputeId !== disputeId) return { facts, conflict: true };
  const closed = facts.disputeState === 'won' || facts.disputeState === 'lost';
  let state: DisputeState | null = facts.disputeState;
  if (change.phase === 'opened') state = closed ? state : 'open';
  else if (!closed) state = KEPT_BY_MERCHANT.has(change.status) ? 'won' : 'lost';
  return { facts: { ...facts, disputeId, disputeState: state }, conflict: false };
}
