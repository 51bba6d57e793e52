import { DRAW_ORDER_SQL, type DrawableGrant, type PlannedAllocation } from '../domain/credit-grant-rules';
import { toSafeInteger } from '../domain/integers';
import type { Queryable, Statement } from '../db/client';

/**
 * The draw-down, written once for every movement that spends credits: which grants are live,
 * in which order they are drawn (DRAW_ORDER_SQL), and how the allocations are written. A single
 * debit and a usage request of many accounts read and write through the same three functions;
 * what each draw takes from which grant is planned by `planDraws` (domain/credit-grant-rules.ts).
 *
 * Callers hold the balance lock of every account they draw from: grants change only under it,
 * so what these reads return stays true until the caller commits.
 */

/**
 * A grant is live, so credits can be drawn from it, from effective_at until expires_at (the
 * expiry's ledger row follows within a sweep interval; nothing is drawn in between).
 * `has_credits` is `remaining > 0`, kept by PostgreSQL: the draw-down index selects on it, so
 * that a draw, which changes `remaining`, is an in-place update (see its migration).
 */
export const live = (p = '') =>
  `${p}closed_at IS NULL AND ${p}has_credits AND ${p}effective_at <= now() AND (${p}expires_at IS NULL OR ${p}expires_at > now())`;

/** The live grants of each account, in draw-down order (an account with none is absent). */
export async function readLiveGrants(
  tx: Queryable,
  accountIds: readonly string[],
  exceptGrantId: number | null = null,
): Promise<Map<string, DrawableGrant[]>> {
  const rows = await tx<{ account_id: string; id: string; remaining: string }[]>`
    SELECT account_id, id, remaining FROM credit_grants
    WHERE account_id = ANY (${accountIds as string[]}::text[]) AND ${tx.unsafe(live())}
      ${exceptGrantId === null ? tx`` : tx`AND id <> ${exceptGrantId}`}
    ORDER BY account_id, ${tx.unsafe(DRAW_ORDER_SQL)}`;
  const byAccount = new Map<string, DrawableGrant[]>();
  for (const row of rows) {
    const grant = {
      id: toSafeInteger(row.id, 'grant id'),
      remaining: toSafeInteger(row.remaining, 'remaining'),
    };
    const list = byAccount.get(row.account_id);
    if (list) list.push(grant);
    else byAccount.set(row.account_id, [grant]);
  }
  return byAccount;
}

/** What grants of an account hold: its live credits. */
export const liveCredits = (grants: readonly DrawableGrant[] | undefined): number =>
  (grants ?? []).reduce((total, grant) => total + grant.remaining, 0);

/** What a spending movement needs to know of each account besides its grants. */
export interface SpendingFacts {
  /** Spent credits a refund, dispute or overdraft took back, not repaid yet. */
  debt: number;
  /** Whether a low-balance threshold or an automatic top-up is set: only then is the watch run. */
  watched: boolean;
}

/** Debt and watch settings of each account (every account asked for is answered). */
export async function readSpendingFacts(
  tx: Queryable,
  accountIds: readonly string[],
): Promise<Map<string, SpendingFacts>> {
  const rows = await tx<{ account_id: string; debt: string; watched: boolean }[]>`
    SELECT a.account_id,
           COALESCE((SELECT SUM(g.owed) FROM credit_grants g WHERE g.account_id = a.account_id AND g.owed > 0), 0)::text AS debt,
           EXISTS (SELECT 1 FROM low_balance_settings s WHERE s.account_id = a.account_id)
             OR EXISTS (SELECT 1 FROM topup_settings t WHERE t.account_id = a.account_id AND t.enabled) AS watched
    FROM unnest(${accountIds as string[]}::text[]) AS a(account_id)`;
  return new Map(
    rows.map((row) => [row.account_id, { debt: toSafeInteger(row.debt, 'debt'), watched: row.watched }]),
  );
}

/**
 * Writes planned allocations: each grant loses what was taken from it (and counts it drawn), and
 * each allocation is recorded under its movement's key (naming the debtor grant when the draw
 * repays that grant's debt). Two statements, whatever the number of grants.
 */
export async function applyDraws(
  tx: Queryable,
  allocations: readonly PlannedAllocation[],
  debtorGrantId: number | null = null,
): Promise<void> {
  if (allocations.length === 0) return;
  await Promise.all(drawStatements(tx, allocations, debtorGrantId));
}

/**
 * The two statements of `applyDraws` (allocations must not be empty), unsent: to be sent as they
 * are or written into a statement that does more (postgres.js nests them as fragments).
 */
export function drawStatements(
  tx: Queryable,
  allocations: readonly PlannedAllocation[],
  debtorGrantId: number | null = null,
): [Statement, Statement] {
  const perGrant = new Map<number, number>();
  for (const { grantId, amount } of allocations) perGrant.set(grantId, (perGrant.get(grantId) ?? 0) + amount);
  return [
    tx`
      UPDATE credit_grants g SET remaining = g.remaining - d.take, drawn = g.drawn + d.take
      FROM unnest(${[...perGrant.keys()]}::bigint[], ${[...perGrant.values()]}::bigint[]) AS d(id, take)
      WHERE g.id = d.id`,
    tx`
      INSERT INTO credit_allocations (business_key, grant_id, amount, debtor_grant_id)
      SELECT key, grant_id, amount, ${debtorGrantId}::bigint
      FROM unnest(${allocations.map((a) => a.key)}::text[], ${allocations.map((a) => a.grantId)}::bigint[],
                  ${allocations.map((a) => a.amount)}::bigint[]) AS d(key, grant_id, amount)`,
  ];
}
