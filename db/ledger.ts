import { toSafeInteger } from '../domain/integers';
import type { Queryable, Sql } from './client';

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

export class AccountNotFoundError extends Error {
  constructor(readonly accountId: string) {
    super(`account ${accountId} does not exist`);
    this.name = 'AccountNotFoundError';
  }
}

export class InsufficientCreditsError extends Error {
  constructor(
    readonly balance: number,
    readonly delta: number,
  ) {
    super(`balance ${balance} cannot take a movement of ${delta}`);
    this.name = 'InsufficientCreditsError';
  }
}

export interface CreditMovement {
  accountId: string;
  delta: number;
  kind: string;
  businessKey: string;
  reason?: string | null;
}

async function findEntryByKey(tx: Queryable, businessKey: string): Promise<LedgerEntry | null> {
  const [row] = await tx<LedgerRow[]>`
    SELECT ${tx.unsafe(LEDGER_COLUMNS)} FROM credit_ledger WHERE business_key = ${businessKey}`;
  return row ? toEntry(row) : null;
}

/**
 * Moves credits exactly once per business key. Must run inside a transaction: it locks the
 * account's balance row first, so concurrent movements on one account serialize and each
 * ledger row records the balance it produced. A key seen before returns the original entry and
 * changes nothing (`applied: false`). With a `floor`, a new movement that would leave the
 * balance below it is refused (debits); without one the balance may go negative (refunds).
 */
export async function applyCreditMovement(
  tx: Queryable,
  movement: CreditMovement,
  options: { floor?: number } = {},
): Promise<{ entry: LedgerEntry; applied: boolean }> {
  const [locked] = await tx<{ balance: string }[]>`
    SELECT balance FROM credit_balances WHERE account_id = ${movement.accountId} FOR UPDATE`;
  if (!locked) throw new AccountNotFoundError(movement.accountId);

  const balanceAfter = BigInt(locked.balance) + BigInt(movement.delta);
  if (options.floor !== undefined && balanceAfter < BigInt(options.floor)) {
    // A replay of a movement that was applied earlier still answers with its original entry.
    const existing = await findEntryByKey(tx, movement.businessKey);
    if (existing) return { entry: existing, applied: false };
    throw new InsufficientCreditsError(toSafeInteger(locked.balance, 'balance'), movement.delta);
  }
  const [inserted] = await tx<LedgerRow[]>`
    INSERT INTO credit_ledger (account_id, delta, kind, business_key, reason, balance_after)
    VALUES (${movement.accountId}, ${movement.delta}, ${movement.kind}, ${movement.businessKey},
            ${movement.reason ?? null}, ${balanceAfter.toString()})
    ON CONFLICT (business_key) DO NOTHING
    RETURNING ${tx.unsafe(LEDGER_COLUMNS)}`;
  if (!inserted) {
    const existing = await findEntryByKey(tx, movement.businessKey);
    if (!existing) throw new Error(`ledger key ${movement.businessKey} conflicted but cannot be read`);
    return { entry: existing, applied: false };
  }
  await tx`
    UPDATE credit_balances SET balance = balance + ${movement.delta}, updated_at = now()
    WHERE account_id = ${movement.accountId}`;
  return { entry: toEntry(inserted), applied: true };
}

/** One page of an account's ledger, newest first, strictly older than `beforeId` when given. */
export async function listLedgerEntries(
  sql: Queryable,
  accountId: string,
  page: { limit: number; beforeId: number | null },
): Promise<LedgerEntry[]> {
  const rows = await sql<LedgerRow[]>`
    SELECT ${sql.unsafe(LEDGER_COLUMNS)} FROM credit_ledger
    WHERE account_id = ${accountId} ${page.beforeId === null ? sql`` : sql`AND id < ${page.beforeId}`}
    ORDER BY id DESC LIMIT ${page.limit}`;
  return rows.map(toEntry);
}

/** Accounts whose stored balance differs from the sum of their ledger (should be none, ever). */
export async function findBalanceDrift(
  sql: Sql,
): Promise<Array<{ accountId: string; balance: string; ledgerSum: string }>> {
  return sql<Array<{ accountId: string; balance: string; ledgerSum: string }>>`
    SELECT b.account_id AS "accountId", b.balance::text AS balance,
           COALESCE(SUM(l.delta), 0)::text AS "ledgerSum"
    FROM credit_balances b LEFT JOIN credit_ledger l ON l.account_id = b.account_id
    GROUP BY b.account_id, b.balance
    HAVING b.balance <> COALESCE(SUM(l.delta), 0)`;
}
