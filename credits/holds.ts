import type { Queryable } from '../db/client';
import { watchBalances } from './balance-watch';
import { live } from './draw-down';

/**
 * Holds never hold more than there is. A hold is a promise of credits the account has; when a
 * movement takes credits from under the holds (an expiry, a void, a refund or dispute, usage
 * that runs into debt), so that the account's live credits less its debt no longer cover what
 * is held, the holds shrink by the shortfall, newest first: the oldest promises are kept as long
 * as they can be. Each shrunk hold records by how much and why (GET .../reservations/:id); one
 * left holding nothing is released. So `available` never goes below zero by holds, and a capture
 * of what a hold still holds always finds the credits.
 *
 * Runs in the movement's transaction, after its grants changed, under the accounts' locks.
 * Answers the accounts whose holds shrank (their available balance rose: the caller watches it).
 */
export async function shrinkUncoveredHolds(
  tx: Queryable,
  accountIds: readonly string[],
  reason: string,
): Promise<string[]> {
  if (accountIds.length === 0) return [];
  const rows = await tx<{ account_id: string }[]>`
    WITH account AS (
      SELECT b.account_id,
             b.held - GREATEST(
               COALESCE((SELECT SUM(g.remaining) FROM credit_grants g
                         WHERE g.account_id = b.account_id AND ${tx.unsafe(live('g.'))}), 0)
               - COALESCE((SELECT SUM(g.owed) FROM credit_grants g
                           WHERE g.account_id = b.account_id AND g.owed > 0), 0),
               0) AS shortfall
      FROM credit_balances b
      WHERE b.account_id = ANY (${accountIds as string[]}::text[]) AND b.held > 0
    ),
    holds AS (
      SELECT r.id, r.amount - r.shrunk AS holding, a.shortfall,
             SUM(r.amount - r.shrunk) OVER (PARTITION BY r.account_id ORDER BY r.created_at DESC, r.id DESC) AS upto
      FROM account a JOIN credit_reservations r ON r.account_id = a.account_id AND r.status = 'held'
      WHERE a.shortfall > 0
    ),
    cut AS (
      SELECT id, holding, LEAST(holding, shortfall - (upto - holding)) AS credits
      FROM holds WHERE upto - holding < shortfall
    ),
    shrunk AS (
      UPDATE credit_reservations r
      SET shrunk = r.shrunk + c.credits, shrink_reason = ${reason}, shrunk_at = now(),
          status = CASE WHEN c.credits = c.holding THEN 'released' ELSE r.status END,
          settled_at = CASE WHEN c.credits = c.holding THEN now() ELSE r.settled_at END
      FROM cut c WHERE r.id = c.id
      RETURNING r.account_id, c.credits
    )
    UPDATE credit_balances b SET held = b.held - s.credits, updated_at = now()
    FROM (SELECT account_id, SUM(credits) AS credits FROM shrunk GROUP BY account_id) s
    WHERE b.account_id = s.account_id
    RETURNING b.account_id`;
  return rows.map((row) => row.account_id);
}

/**
 * After a movement that took credits without asking whether they were held (an expiry, a void,
 * a revocation, usage run into debt): shrinks the holds it left uncovered, and re-arms the
 * thresholds of the accounts whose available balance rose with it (it can only rise).
 */
export async function keepHoldsCovered(
  tx: Queryable,
  accountIds: readonly string[],
  reason: string,
): Promise<void> {
  const shrunk = await shrinkUncoveredHolds(tx, accountIds, reason);
  await watchBalances(tx, shrunk, { spending: false });
}
