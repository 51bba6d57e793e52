import { toSafeInteger } from '../domain/integers';
import type { Queryable, Sql } from '../db/client';

export interface Account {
  id: string;
  email: string;
  stripeCustomerId: string | null;
  balance: number;
  createdAt: Date;
}

interface AccountRow {
  id: string;
  email: string;
  stripe_customer_id: string | null;
  balance: string;
  created_at: Date;
}

function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    email: row.email,
    stripeCustomerId: row.stripe_customer_id,
    balance: toSafeInteger(row.balance, 'balance'),
    createdAt: row.created_at,
  };
}

/** Creates the account with a zero balance; an existing ID is returned unchanged. */
export async function createAccount(
  sql: Sql,
  input: { id: string; email: string },
): Promise<{ account: Account; created: boolean }> {
  return sql.begin(async (tx) => {
    const inserted = await tx`
      INSERT INTO accounts (id, email) VALUES (${input.id}, ${input.email})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (inserted.length > 0) {
      await tx`INSERT INTO credit_balances (account_id, balance) VALUES (${input.id}, 0)`;
    }
    const account = await findAccount(tx, input.id);
    if (!account) throw new Error(`account ${input.id} vanished inside its own transaction`);
    return { account, created: inserted.length > 0 };
  });
}

/**
 * Creates many accounts at once, each with a zero balance (seeding a benchmark); an existing ID
 * is left as it is.
 */
export async function createAccounts(
  sql: Sql,
  accounts: Array<{ id: string; email: string }>,
): Promise<void> {
  const ids = accounts.map((account) => account.id);
  const emails = accounts.map((account) => account.email);
  await sql.begin(async (tx) => {
    await tx`
      WITH inserted AS (
        INSERT INTO accounts (id, email) SELECT * FROM unnest(${ids}::text[], ${emails}::text[])
        ON CONFLICT (id) DO NOTHING RETURNING id
      )
      INSERT INTO credit_balances (account_id, balance) SELECT id, 0 FROM inserted`;
  });
}

export async function findAccount(sql: Queryable, id: string): Promise<Account | null> {
  const [row] = await sql<AccountRow[]>`
    SELECT a.id, a.email, a.stripe_customer_id, b.balance, a.created_at
    FROM accounts a JOIN credit_balances b ON b.account_id = a.id
    WHERE a.id = ${id}`;
  return row ? toAccount(row) : null;
}
