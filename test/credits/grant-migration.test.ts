import { randomUUID } from 'node:crypto';
import { createSql, type Sql } from '../../db/client';
import { findBalanceDrift } from '../../credits/ledger';
import { migrate } from '../../db/migrate';

/** The migrations that shipped before credit grants: a database as that release left it. */
const BEFORE_GRANTS = 4;

describe('migrating existing balances to credit grants', () => {
  let admin: Sql;
  let sql: Sql;
  let url: string;
  const database = `migration_${randomUUID().replaceAll('-', '')}`;

  beforeAll(async () => {
    const base = process.env.TEST_DATABASE_URL ?? '';
    admin = createSql(base, { max: 1 });
    await admin.unsafe(`CREATE DATABASE ${database}`);
    const target = new URL(base);
    target.pathname = `/${database}`;
    url = target.toString();
    expect(await migrate(url, () => {}, { count: BEFORE_GRANTS })).toHaveLength(BEFORE_GRANTS);
    sql = createSql(url, { max: 2 });
  });
  afterAll(async () => {
    await sql?.end();
    await admin?.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin?.end();
  });

  /** Writes an account's history as the release before grants did: ledger rows and the balance. */
  async function seed(id: string, rows: Array<{ key: string; delta: number; kind: string }>) {
    await sql`INSERT INTO accounts (id, email) VALUES (${id}, ${`${id}@customers.test`})`;
    let balance = 0;
    for (const row of rows) {
      balance += row.delta;
      await sql`
        INSERT INTO credit_ledger (account_id, delta, kind, business_key, balance_after)
        VALUES (${id}, ${row.delta}, ${row.kind}, ${row.key}, ${balance})`;
    }
    await sql`INSERT INTO credit_balances (account_id, balance) VALUES (${id}, ${balance})`;
    return balance;
  }

  it('when a populated database is migrated, then every balance stays, grants hold it, and debit keys become unambiguous', async () => {
    const balances = new Map<string, number>();
    // A pack bought, then partly spent.
    balances.set(
      'buyer',
      await seed('buyer', [
        { key: 'cs_test_buyer', delta: 550, kind: 'purchase' },
        { key: 'debit:buyer:job-1', delta: -150, kind: 'debit' },
      ]),
    );
    await sql`
      INSERT INTO purchases (id, kind, account_id, credits, amount_cents, currency, livemode, status, workflow_id, ledger_entry_id, payment_intent_id)
      SELECT 'cs_test_buyer', 'checkout_session', 'buyer', 550, 4500, 'USD', false, 'completed', 'evt_1', id, 'pi_buyer'
      FROM credit_ledger WHERE business_key = 'cs_test_buyer'`;
    // A purchase refunded after it was spent: a negative balance.
    balances.set(
      'refunded',
      await seed('refunded', [
        { key: 'cs_test_refunded', delta: 100, kind: 'purchase' },
        { key: 'debit:refunded:all', delta: -100, kind: 'debit' },
        { key: 'refund:ch_1:900', delta: -100, kind: 'refund' },
      ]),
    );
    await sql`
      INSERT INTO purchases (id, kind, account_id, credits, amount_cents, currency, livemode, status, workflow_id, ledger_entry_id)
      SELECT 'cs_test_refunded', 'checkout_session', 'refunded', 100, 900, 'usd', false, 'completed', 'evt_2', id
      FROM credit_ledger WHERE business_key = 'cs_test_refunded'`;
    await sql`INSERT INTO purchase_reversals (purchase_id, refunded_cents, revoked_credits) VALUES ('cs_test_refunded', 900, 100)`;
    // An account whose ID has a colon, with an old-style debit key.
    balances.set(
      'team:a',
      await seed('team:a', [
        { key: 'promo:team:a', delta: 40, kind: 'adjustment' },
        { key: 'debit:team:a:k', delta: -10, kind: 'debit' },
      ]),
    );
    balances.set('empty', await seed('empty', []));

    const applied = await migrate(url);
    expect(applied.length).toBeGreaterThan(0);
    for (const [id, balance] of balances) {
      const [row] = await sql<
        { balance: string }[]
      >`SELECT balance FROM credit_balances WHERE account_id = ${id}`;
      expect(Number(row?.balance)).toBe(balance);
    }
    expect(await findBalanceDrift(sql)).toEqual([]);
    const grants = await sql<{ account_id: string; source: string; remaining: string; owed: string }[]>`
      SELECT account_id, source, remaining, owed FROM credit_grants ORDER BY account_id, id`;
    expect(grants.map((g) => [g.account_id, g.source, Number(g.remaining), Number(g.owed)])).toEqual([
      ['buyer', 'purchase', 0, 0],
      ['buyer', 'migration', 400, 0],
      ['refunded', 'purchase', 0, 0],
      ['refunded', 'migration', 0, 100],
      ['team:a', 'migration', 30, 0],
    ]);
    const [purchase] = await sql<{ grant_id: string | null; currency: string }[]>`
      SELECT grant_id, currency FROM purchases WHERE id = 'cs_test_buyer'`;
    expect(purchase).toMatchObject({ grant_id: expect.any(String), currency: 'usd' });
    const keys = await sql<{ business_key: string }[]>`
      SELECT business_key FROM credit_ledger WHERE kind = 'debit' ORDER BY business_key`;
    expect(keys.map((row) => row.business_key)).toEqual([
      'debit:buyer:job-1',
      'debit:refunded:all',
      'debit:team%3Aa:k',
    ]);
  });
});
