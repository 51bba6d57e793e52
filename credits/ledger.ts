import { errors } from '../domain/errors';
import { toSafeInteger } from '../domain/integers';
import type { Queryable, Sql, Statement } from '../db/client';
import { watchBalance } from './balance-watch';
import { recordLedgerEvent } from './follow-ups';

export interface Allocation {
  grantId: number;
  /** Credits this movement took from the grant (negative: gave back to it). */
  amount: number;
}

export interface LedgerEntry {
  id: number;
  accountId: string;
  delta: number;
  kind: string;
  businessKey: string;
  reason: string | null;
  balanceAfter: number;
  createdAt: Date;
}

/** A ledger row as PostgreSQL answers it (bigint columns as text). */
export interface LedgerRow {
  id: string;
  account_id: string;
  delta: string;
  kind: string;
  business_key: string;
  reason: string | null;
  balance_after: string;
  created_at: Date;
}

export const LEDGER_COLUMNS = 'id, account_id, delta, kind, business_key, reason, balance_after, created_at';

export function toEntry(row: LedgerRow): LedgerEntry {
  return {
    id: toSafeInteger(row.id, 'ledger id'),
    accountId: row.account_id,
    delta: toSafeInteger(row.delta, 'ledger delta'),
    kind: row.kind,
    businessKey: row.business_key,
    reason: row.reason,
    balanceAfter: toSafeInteger(row.balance_after, 'balance'),
    createdAt: row.created_at,
  };
}

export interface CreditMovement {
  accountId: string;
  delta: number;
  kind: string;
  businessKey: string;
  reason?: string | null;
}

/**
 * Locks the account's balance row for the rest of the transaction. Every credit movement takes
 * this lock first (then grants, then reservations), so movements on one account serialize and
 * never deadlock one another.
 */
export async function lockAccountBalance(
  tx: Queryable,
  accountId: string,
): Promise<{ balance: number; held: number }> {
  const [locked] = await tx<{ balance: string; held: string }[]>`
    SELECT balance, held FROM credit_balances WHERE account_id = ${accountId} FOR UPDATE`;
  if (!locked) throw errors.accountNotFound(accountId);
  return { balance: toSafeInteger(locked.balance, 'balance'), held: toSafeInteger(locked.held, 'held') };
}

/**
 * Locks the balance rows of many accounts, in account ID order (so that two movements locking
 * overlapping sets never deadlock), and answers those that exist.
 */
export async function lockAccountBalances(
  tx: Queryable,
  accountIds: readonly string[],
): Promise<Map<string, { balance: number; held: number }>> {
  const rows = await tx<{ account_id: string; balance: string; held: string }[]>`
    SELECT account_id, balance, held FROM credit_balances
    WHERE account_id = ANY (${accountIds as string[]}::text[])
    ORDER BY account_id FOR UPDATE`;
  return new Map(
    rows.map((row) => [
      row.account_id,
      { balance: toSafeInteger(row.balance, 'balance'), held: toSafeInteger(row.held, 'held') },
    ]),
  );
}

export async function findEntryByKey(tx: Queryable, businessKey: string): Promise<LedgerEntry | null> {
  const [row] = await tx<LedgerRow[]>`
    SELECT ${tx.unsafe(LEDGER_COLUMNS)} FROM credit_ledger WHERE business_key = ${businessKey}`;
  return row ? toEntry(row) : null;
}

/**
 * Appends the ledger row and moves the balance by the same delta; null when the business key
 * was recorded before (nothing changes). The caller holds the account's lock, so the balance
 * each row records is the one it produced. A balance past what a JS number holds exactly is
 * refused before anything is written.
 */
export async function recordMovement(tx: Queryable, movement: CreditMovement): Promise<LedgerEntry | null> {
  const [inserted] = await tx<LedgerRow[]>`
    INSERT INTO credit_ledger (account_id, delta, kind, business_key, reason, balance_after)
    SELECT ${movement.accountId}, ${movement.delta}, ${movement.kind}, ${movement.businessKey},
           ${movement.reason ?? null}, balance + ${movement.delta}
    FROM credit_balances
    WHERE account_id = ${movement.accountId}
      AND abs(balance + ${movement.delta}) <= ${Number.MAX_SAFE_INTEGER}
    ON CONFLICT (business_key) DO NOTHING
    RETURNING ${tx.unsafe(LEDGER_COLUMNS)}`;
  if (!inserted) {
    if (await findEntryByKey(tx, movement.businessKey)) return null;
    throw errors.balanceOutOfRange(movement.accountId);
  }
  await tx`
    UPDATE credit_balances SET balance = balance + ${movement.delta}, updated_at = now()
    WHERE account_id = ${movement.accountId}`;
  const entry = toEntry(inserted);
  // What the movement causes commits with it: its event, and a crossing's notice or top-up.
  await recordLedgerEvent(tx, entry);
  await watchBalance(tx, movement.accountId, movement.kind);
  return entry;
}

/** A ledger row whose balance the caller computed under the account's lock. */
export interface PlannedMovement extends CreditMovement {
  reason: string | null;
  balanceAfter: number;
}

/**
 * The INSERT of ledger rows whose `balance_after` the caller computed from the balance it locked
 * (in the order given, per account), for movements that spend: one statement for any number of
 * rows (not none), unsent (see drawStatements). Balances move in `moveBalances`. A balance past
 * what a JS number holds exactly is refused before anything is built.
 */
export function insertMovements(
  tx: Queryable,
  movements: readonly PlannedMovement[],
): Statement<LedgerRow[]> {
  const outOfRange = movements.find((movement) => !Number.isSafeInteger(movement.balanceAfter));
  if (outOfRange) throw errors.balanceOutOfRange(outOfRange.accountId);
  return tx<LedgerRow[]>`
    INSERT INTO credit_ledger (account_id, delta, kind, business_key, reason, balance_after)
    SELECT * FROM unnest(${movements.map((m) => m.accountId)}::text[], ${movements.map((m) => m.delta)}::bigint[],
                         ${movements.map((m) => m.kind)}::text[], ${movements.map((m) => m.businessKey)}::text[],
                         ${movements.map((m) => m.reason)}::text[], ${movements.map((m) => m.balanceAfter)}::bigint[])
    RETURNING ${tx.unsafe(LEDGER_COLUMNS)}`;
}

/** What a spending movement does to an account's balance row: its ledger deltas, and holds it freed. */
export interface BalanceChange {
  accountId: string;
  delta: number;
  /** Credits no longer held (a hold settled by the movement); 0 when none. */
  released: number;
  /** Usage meters the movement moved, by feature (credits/usage.ts); merged into the row's. */
  meters?: Record<string, unknown> | null;
}

/** Moves the balance (and held, and usage meters) of each account, in one statement. */
export async function moveBalances(tx: Queryable, changes: readonly BalanceChange[]): Promise<void> {
  const statement = updateBalances(tx, changes);
  if (statement) await statement;
}

/** The statement of `moveBalances`, unsent (see drawStatements); null when no balance moves. */
export function updateBalances(tx: Queryable, changes: readonly BalanceChange[]): Statement | null {
  const moving = changes.filter((change) => change.delta !== 0 || change.released !== 0 || change.meters);
  if (moving.length === 0) return null;
  return tx`
    UPDATE credit_balances b
    SET balance = b.balance + c.delta, held = b.held - c.released,
        usage_meters = CASE WHEN c.meters IS NULL THEN b.usage_meters ELSE b.usage_meters || c.meters::jsonb END,
        updated_at = now()
    FROM unnest(${moving.map((c) => c.accountId)}::text[], ${moving.map((c) => c.delta)}::bigint[],
                ${moving.map((c) => c.released)}::bigint[],
                -- As text: postgres.js would send each element of a jsonb[] as a JSON string.
                ${moving.map((c) => (c.meters ? JSON.stringify(c.meters) : null))}::text[])
         AS c(account_id, delta, released, meters)
    WHERE b.account_id = c.account_id`;
}

export type LedgerEntryWithAllocations = LedgerEntry & { allocations: Allocation[] };

/** One page of an account's ledger, newest first, strictly older than `beforeId` when given. */
export async function listLedgerEntries(
  sql: Queryable,
  accountId: string,
  page: { limit: number; beforeId: number | null },
): Promise<LedgerEntryWithAllocations[]> {
  const rows = await sql<(LedgerRow & { allocations: { grantId: string; amount: string }[] | null })[]>`
    SELECT ${sql.unsafe(LEDGER_COLUMNS.replace(/(\w+)/g, 'l.$1'))},
           (SELECT json_agg(json_build_object('grantId', a.grant_id::text, 'amount', a.amount::text) ORDER BY a.id)
            FROM credit_allocations a WHERE a.business_key = l.business_key) AS allocations
    FROM credit_ledger l
    WHERE l.account_id = ${accountId} ${page.beforeId === null ? sql`` : sql`AND l.id < ${page.beforeId}`}
    ORDER BY l.id DESC LIMIT ${page.limit}`;
  return rows.map((row) => ({
    ...toEntry(row),
    allocations: (row.allocations ?? []).map((a) => ({
      grantId: toSafeInteger(a.grantId, 'grant id'),
      amount: toSafeInteger(a.amount, 'allocation'),
    })),
  }));
}

export interface LedgerDrift {
  accountId: string;
  balance: string;
  ledgerSum: string;
  grantSum: string;
}

/**
 * Accounts whose books disagree (should be none, ever): the stored balance, the sum of the
 * ledger, and what the grants hold (Σ remaining − Σ owed; a closed grant holds nothing) must be
 * one number.
 */
export async function findBalanceDrift(sql: Sql): Promise<LedgerDrift[]> {
  return sql<LedgerDrift[]>`
    SELECT b.account_id AS "accountId", b.balance::text AS balance,
           COALESCE(l.total, 0)::text AS "ledgerSum", COALESCE(g.total, 0)::text AS "grantSum"
    FROM credit_balances b
    LEFT JOIN (SELECT account_id, SUM(delta) AS total FROM credit_ledger GROUP BY account_id) l
      ON l.account_id = b.account_id
    LEFT JOIN (SELECT account_id, SUM(remaining) - SUM(owed) AS total
               FROM credit_grants GROUP BY account_id) g
      ON g.account_id = b.account_id
    WHERE b.balance <> COALESCE(l.total, 0) OR b.balance <> COALESCE(g.total, 0)`;
}

export interface OrphanRows {
  /** Ledger rows of an account with no balance row. */
  ledgerRows: number;
  /** Allocations naming a grant (or debtor grant) that does not exist. */
  allocations: number;
  /** Usage ledger rows whose events did not burn exactly their credits. */
  usageRows: number;
}

/**
 * What the foreign keys of the ledger and the allocations used to check, and what the usage
 * ledger rows promise: no row names an account or grant that does not exist, and each usage row's
 * credits are exactly what its events burned. Should be none, ever.
 */
export async function findOrphanRows(sql: Sql): Promise<OrphanRows> {
  const [row] = await sql<{ ledger_rows: string; allocations: string; usage_rows: string }[]>`
    SELECT
      (SELECT count(*) FROM credit_ledger l
       WHERE NOT EXISTS (SELECT 1 FROM credit_balances b WHERE b.account_id = l.account_id))::text AS ledger_rows,
      (SELECT count(*) FROM credit_allocations a
       WHERE NOT EXISTS (SELECT 1 FROM credit_grants g WHERE g.id = a.grant_id)
          OR (a.debtor_grant_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM credit_grants g WHERE g.id = a.debtor_grant_id)))::text AS allocations,
      (SELECT count(*) FROM credit_ledger l
       LEFT JOIN (SELECT ledger_entry_id, SUM(credits) AS credits FROM usage_events
                  WHERE ledger_entry_id IS NOT NULL GROUP BY ledger_entry_id) e ON e.ledger_entry_id = l.id
       WHERE l.kind = 'usage' AND COALESCE(e.credits, 0) <> -l.delta)::text AS usage_rows`;
  return {
    ledgerRows: toSafeInteger(row?.ledger_rows ?? '0', 'count'),
    allocations: toSafeInteger(row?.allocations ?? '0', 'count'),
    usageRows: toSafeInteger(row?.usage_rows ?? '0', 'count'),
  };
}
