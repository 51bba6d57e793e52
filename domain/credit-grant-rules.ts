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
/**
 * Where a grant came from. `overdraft`: the one grant per account that owes what usage of a
 * feature allowing debt spent beyond the account's credits (it holds nothing, only debt).
 */
export type GrantSource = 'purchase' | 'subscription' | 'promotional' | 'manual' | 'migration' | 'overdraft';

/** Draw-down order of live grants: priority ascending, soonest expiry (none last), oldest. */
export const DRAW_ORDER_SQL = 'priority ASC, expires_at ASC NULLS LAST, effective_at ASC, id ASC';

/**
 * What an account may spend or hold now. Holds never take it below zero: a hold covers at most
 * what the live credits, less debt, hold (the engine shrinks holds to that after any movement
 * that takes credits from under them, and a grant that passed its expiry before the sweep closed
 * it is not live). Debt does: an account that owes shows it as a negative figure.
 */
export function availableCredits(standing: { live: number; debt: number; held: number }): number {
  const cover = standing.live - standing.debt;
  return cover - Math.min(standing.held, Math.max(cover, 0));
}

/**
 * How many credits the holds of an account hold beyond what its live credits, less debt, cover:
 * what they must shrink by.
 */
export function uncoveredHolds(standing: { live: number; debt: number; held: number }): number {
  return Math.max(0, standing.held - Math.max(standing.live - standing.debt, 0));
}

/**
 * The ledger kinds that spend credits (debits and captures, usage) or take them at expiry: the only
 * movements that may open an automatic top-up. Credits that arrive (a grant, a purchase) or that a
 * refund, dispute or operator's void takes back never charge the customer's card.
 */
export const SPENDING_KINDS: readonly string[] = ['debit', 'usage', 'expiry'];

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

/** A live grant as a draw sees it: in draw-down order, with what it still holds. */
export interface DrawableGrant {
  id: number;
  remaining: number;
}

/** Credits one movement takes from one grant. */
export interface PlannedAllocation {
  key: string;
  grantId: number;
  amount: number;
}

/**
 * Draws, one after the other, from the same grants in draw-down order: each takes what it
 * asks from the first grants that still hold credits, as far as they go. Answers each grant's
 * part and what each draw got (less than it asked only when the grants ran out).
 */
export function planDraws(
  grants: readonly DrawableGrant[],
  draws: ReadonlyArray<{ key: string; amount: number }>,
): { allocations: PlannedAllocation[]; drawn: number[] } {
  const left = grants.map((grant) => grant.remaining);
  const allocations: PlannedAllocation[] = [];
  let next = 0;
  const drawn = draws.map(({ key, amount }) => {
    let wanted = Math.max(0, amount);
    while (wanted > 0 && next < grants.length) {
      const grant = grants[next];
      const available = left[next] ?? 0;
      if (!grant || available === 0) {
        next += 1;
        continue;
      }
      const take = Math.min(wanted, available);
      allocations.push({ key, grantId: grant.id, amount: take });
      left[next] = available - take;
      wanted -= take;
    }
    return Math.max(0, amount) - wanted;
  });
  return { allocations, drawn };
}
