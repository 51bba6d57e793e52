import { randomUUID } from 'node:crypto';
import { createAccount } from '../../credits/accounts';
import { debitCredits } from '../../credits/debits';
import { createGrant, drawDown } from '../../credits/grants';
import { createSql, SentWithCommit, transactionCommittingWith, type Sql } from '../../db/client';
import { balanceOf, driftedAccounts } from '../support/db';

/**
 * A spending movement's last writes travel with its COMMIT (db/client.ts), so that the account's
 * lock is held one round trip less; and a draw rewrites its grant and balance rows in place.
 * Both are what a busy account's throughput rests on; neither may cost a credit.
 */
describe('writes sent with the COMMIT', () => {
  let sql: Sql;
  const table = `commit_with_${randomUUID().replaceAll('-', '')}`;
  beforeAll(async () => {
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 4 });
    await sql.unsafe(`CREATE TABLE ${table} (id int PRIMARY KEY, note text NOT NULL)`);
  });
  afterAll(async () => {
    await sql.unsafe(`DROP TABLE IF EXISTS ${table}`);
    await sql.end();
  });

  const rowsOf = async () =>
    (await sql.unsafe<{ id: number }[]>(`SELECT id FROM ${table} ORDER BY id`)).map((row) => row.id);

  async function fundedAccount(credits: number) {
    const id = `acct_${randomUUID()}`;
    await createAccount(sql, { id, email: `${id}@example.test` });
    await sql.begin((tx) =>
      createGrant(tx, {
        accountId: id,
        source: 'manual',
        category: 'paid',
        priority: 100,
        expiresAt: null,
        amount: credits,
        businessKey: `grant:${id}`,
        kind: 'grant',
        reason: 'test credits',
      }),
    );
    return id;
  }

  it('when the work answers writes it sent without awaiting, then they commit with it and their answer is returned', async () => {
    const answer = await transactionCommittingWith(sql, async (tx) => {
      await tx.unsafe(`INSERT INTO ${table} VALUES (1, 'awaited')`);
      const sent = tx
        .unsafe<{ id: number }[]>(`INSERT INTO ${table} VALUES (2, 'sent') RETURNING id`)
        .execute();
      return new SentWithCommit(Promise.resolve(sent).then((rows) => rows.map((row) => row.id)));
    });
    expect(answer).toEqual([2]);
    expect(await rowsOf()).toEqual([1, 2]);
  });

  it('when a write sent with the COMMIT fails, then its error is thrown and nothing of the transaction is committed', async () => {
    await expect(
      transactionCommittingWith(sql, async (tx) => {
        await tx.unsafe(`INSERT INTO ${table} VALUES (10, 'awaited')`);
        // The primary key refuses 1 (committed above): PostgreSQL then answers COMMIT by rolling back.
        const sent = Promise.all([
          tx.unsafe(`INSERT INTO ${table} VALUES (11, 'sent')`).execute(),
          tx.unsafe(`INSERT INTO ${table} VALUES (1, 'duplicate')`).execute(),
        ]);
        return new SentWithCommit(sent);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await rowsOf()).toEqual([1, 2]);
  });

  it('when the work throws after sending a write, then the transaction rolls back', async () => {
    await expect(
      transactionCommittingWith(sql, async (tx) => {
        await tx.unsafe(`INSERT INTO ${table} VALUES (20, 'sent')`);
        throw new Error('decided against it');
      }),
    ).rejects.toThrow('decided against it');
    expect(await rowsOf()).toEqual([1, 2]);
  });

  it('when 60 debits race on one account whose writes go with their COMMIT, then each applies once and the balance equals its ledger', async () => {
    const accountId = await fundedAccount(50);
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, index) =>
        debitCredits(sql, { accountId, amount: 1, idempotencyKey: `race-${index % 55}`, reason: 'race' }),
      ),
    );
    const applied = results.filter((r) => r.status === 'fulfilled' && r.value.applied);
    const refused = results.filter((r) => r.status === 'rejected');
    // 55 distinct keys on 50 credits: 50 applied, 5 refused; the 5 repeated keys answer their first.
    expect(applied).toHaveLength(50);
    expect(refused.length + applied.length).toBeLessThanOrEqual(60);
    for (const failure of refused) {
      expect(failure.reason).toMatchObject({ code: 'insufficient_credits' });
    }
    expect(await balanceOf(sql, accountId)).toBe(0);
    expect(await driftedAccounts(sql, [accountId])).toEqual([]);
  });

  it('when a draw takes credits from a live grant, then the grant and the balance rows are rewritten in place (HOT)', async () => {
    const accountId = await fundedAccount(100);
    const stats = await sql.begin(async (tx) => {
      for (let i = 0; i < 5; i += 1) {
        await drawDown(tx, {
          accountId,
          amount: 1,
          businessKey: `debit:${accountId}:hot-${i}`,
          kind: 'debit',
          reason: 'in place',
        });
      }
      return tx<{ relname: string; updated: string; hot: string }[]>`
        SELECT relname, n_tup_upd::text AS updated, n_tup_hot_upd::text AS hot
        FROM pg_stat_xact_user_tables WHERE relname IN ('credit_grants', 'credit_balances')
        ORDER BY relname`;
    });
    // A row updated again within one transaction may find no room left on its page: most, not all.
    for (const table of stats) {
      expect(Number(table.updated)).toBeGreaterThanOrEqual(5);
      expect(Number(table.hot)).toBeGreaterThanOrEqual(Number(table.updated) - 1);
    }
    expect(stats.map((s) => s.relname)).toEqual(['credit_balances', 'credit_grants']);
  });
});
