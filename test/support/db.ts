import type { Sql } from '../../db/client';

/** Direct reads of what the service wrote, for assertions on outcomes. */
export async function ledgerRowsFor(sql: Sql, businessKey: string) {
  return sql<{ id: string; account_id: string; delta: string; balance_after: string; kind: string }[]>`
    SELECT id, account_id, delta, balance_after, kind FROM credit_ledger WHERE business_key = ${businessKey}`;
}

export async function balanceOf(sql: Sql, accountId: string): Promise<number> {
  const [row] = await sql<
    { balance: string }[]
  >`SELECT balance FROM credit_balances WHERE account_id = ${accountId}`;
  if (!row) throw new Error(`no balance row for ${accountId}`);
  return Number(row.balance);
}

export async function purchaseRow(sql: Sql, checkoutSessionId: string) {
  const [row] = await sql<
    { status: string; reason_code: string | null; credits: string | null; payment_intent_id: string | null }[]
  >`SELECT status, reason_code, credits, payment_intent_id FROM purchases WHERE id = ${checkoutSessionId}`;
  return row ?? null;
}

export async function outboxRowsFor(sql: Sql, accountId: string) {
  return sql<{ key: string; status: string; attempts: number; last_error: string | null }[]>`
    SELECT key, status, attempts, last_error FROM email_outbox WHERE account_id = ${accountId}`;
}

/** Accounts among `accountIds` whose balance differs from the sum of their ledger. */
export async function driftedAccounts(sql: Sql, accountIds: string[]) {
  return sql<{ account_id: string }[]>`
    SELECT b.account_id FROM credit_balances b
    LEFT JOIN credit_ledger l ON l.account_id = b.account_id
    WHERE b.account_id = ANY(${accountIds}::text[])
    GROUP BY b.account_id, b.balance
    HAVING b.balance <> COALESCE(SUM(l.delta), 0)`;
}
