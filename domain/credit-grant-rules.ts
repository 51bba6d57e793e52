/**
 * The arithmetic of credit grants, shared by the ledger code, the API and the tests. A grant's
 * amount is always accounted for, whatever happened to it:
 *
 *   amount = remaining + drawn + expired + voided + revokedRemaining
 *
 * and what refunds and disputes took back from it is `revokedRemaining + owed + repaid`: taken
 * from what remained, spent credits owed as debt, and debt that other grants repaid.
 */

export type GrantCategory = 'paid' | 'promotional';
export type GrantSource = 'purchase' | 'subscription' | 'promotional' | 'manual' | 'migration';

/** Draw-down order of live grants: priority ascending, soonest expiry (none last), oldest. */
export const DRAW_ORDER_SQL = 'priority ASC, expires_at ASC NULLS LAST, effective_at ASC, id ASC';

/** Priorities grants get unless told otherwise: promotional credits are spent before paid ones. */
export const DEFAULT_PRIORITY: Record<GrantCategory, number> = { promotional: 10, paid: 100 };

export interface GrantTally {
  amount: number;
  remaining: number;
  drawn: number;
  expired: number;
  voided: number;
  revokedRemaining: number;
  owed: number;
  repaid: number;
}

export const revokedTotal = (grant: GrantTally) => grant.revokedRemaining + grant.owed + grant.repaid;

/**
 * The most refunds and disputes may ever take back from a grant: what it has not lost to expiry
 * or a void. Credits that expired are never taken a second time.
 */
export const revocationLimit = (grant: GrantTally) => grant.remaining + grant.drawn + grant.revokedRemaining;

/**
 * A revocation of `credits` more from a grant: first what remains of it, the rest (credits
 * already spent) as debt. Never beyond the limit above.
 */
export function splitRevocation(
  grant: GrantTally,
  credits: number,
): { fromRemaining: number; asDebt: number } {
  const room = revocationLimit(grant) - revokedTotal(grant);
  const take = Math.max(0, Math.min(credits, room));
  const fromRemaining = Math.min(take, grant.remaining);
  return { fromRemaining, asDebt: take - fromRemaining };
}

/** True when the grant's columns add up; the database checks the same. */
export function isBalancedGrant(grant: GrantTally): boolean {
  return (
    grant.amount === grant.remaining + grant.drawn + grant.expired + grant.voided + grant.revokedRemaining
  );
}
