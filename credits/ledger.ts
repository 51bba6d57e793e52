import { errors } from '../domain/errors';
import { toSafeInteger } from '../domain/integers';
import type { Queryable, Sql } from '../db/client';
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

interface LedgerRow {
  id: string;
  account_id: string;
  delta: string;
  kind: string;
  business_key: string;
  reason: string | null;
  balance_after: string;
  created_at: Date;
}

const LEDGER_COLUMNS = 'id, account_id, delta, kind, business_key, reason, balance_after, created_at';

function toEntry(row: LedgerRow): LedgerEntry {
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
  await watchBalance(tx, movement.accountId);
  return entry;
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
