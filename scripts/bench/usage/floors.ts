import type { Sql } from '../../../db/client';
import type { BenchEvent } from './workload';

/**
 * The raw floors: the least PostgreSQL work the same requests can be done with, through
 * postgres.js with no HTTP, on tables of their own (schema bench_floor) in the same database.
 * Each takes a request's batch in one transaction, with a UNIQUE (account, event ID):
 *
 * - per-event: for each event, one INSERT and one conditional UPDATE of the balance (in account
 *   order, so that concurrent batches cannot deadlock);
 * - set-based: the accounts' balance rows locked in ID order, one multi-row INSERT of the events,
 *   one UPDATE of every account's balance;
 * - a debit: one transaction of a conditional UPDATE and one INSERT under a UNIQUE key;
 * - the same debit pipelined (with --direct): BEGIN sent with the UPDATE, the INSERT with the
 *   COMMIT, on a reserved connection: two round trips instead of four, the lock held across one.
 */

export async function prepareFloors(sql: Sql, accounts: readonly string[], credits: number): Promise<void> {
  await sql`DROP SCHEMA IF EXISTS bench_floor CASCADE`;
  await sql`CREATE SCHEMA bench_floor`;
  await sql`CREATE TABLE bench_floor.balances (account_id text PRIMARY KEY, balance bigint NOT NULL)`;
  await sql`
    CREATE TABLE bench_floor.events (
      id bigserial PRIMARY KEY, account_id text NOT NULL, event_id text NOT NULL, quantity bigint NOT NULL,
      UNIQUE (account_id, event_id))`;
  await sql`
    CREATE TABLE bench_floor.debits (
      id bigserial PRIMARY KEY, account_id text NOT NULL, key text NOT NULL UNIQUE, amount bigint NOT NULL,
      balance_after bigint NOT NULL)`;
  await sql`INSERT INTO bench_floor.balances SELECT unnest(${accounts as string[]}::text[]), ${credits}`;
}

export async function perEventFloor(sql: Sql, batch: readonly BenchEvent[]): Promise<void> {
  const ordered = [...batch].sort((a, b) =>
    a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0,
  );
  await sql.begin(async (tx) => {
    for (const event of ordered) {
      const inserted = await tx`
        INSERT INTO bench_floor.events (account_id, event_id, quantity)
        VALUES (${event.accountId}, ${event.eventId}, ${event.quantity})
        ON CONFLICT DO NOTHING RETURNING 1`;
      if (inserted.length > 0) {
        await tx`
          UPDATE bench_floor.balances SET balance = balance - ${event.quantity}
          WHERE account_id = ${event.accountId} AND balance >= ${event.quantity}`;
      }
    }
  });
}

export async function setBasedFloor(sql: Sql, batch: readonly BenchEvent[]): Promise<void> {
  const accounts = [...new Set(batch.map((event) => event.accountId))];
  await sql.begin(async (tx) => {
    await tx`
      SELECT 1 FROM bench_floor.balances WHERE account_id = ANY (${accounts}::text[])
      ORDER BY account_id FOR UPDATE`;
    const inserted = await tx<{ account_id: string; quantity: string }[]>`
      INSERT INTO bench_floor.events (account_id, event_id, quantity)
      SELECT * FROM unnest(${batch.map((e) => e.accountId)}::text[], ${batch.map((e) => e.eventId)}::text[],
                           ${batch.map((e) => e.quantity)}::bigint[])
      ON CONFLICT DO NOTHING RETURNING account_id, quantity`;
    const totals = new Map<string, number>();
    for (const row of inserted)
      totals.set(row.account_id, (totals.get(row.account_id) ?? 0) + Number(row.quantity));
    await tx`
      UPDATE bench_floor.balances b SET balance = b.balance - t.total
      FROM unnest(${[...totals.keys()]}::text[], ${[...totals.values()]}::bigint[]) AS t(account_id, total)
      WHERE b.account_id = t.account_id`;
  });
}

export async function debitFloor(sql: Sql, accountId: string, key: string): Promise<void> {
  await sql.begin(async (tx) => {
    const [row] = await tx<{ balance: string }[]>`
      UPDATE bench_floor.balances SET balance = balance - 1
      WHERE account_id = ${accountId} AND balance >= 1 RETURNING balance`;
    if (!row) throw new Error(`floor account ${accountId} ran out`);
    await tx`
      INSERT INTO bench_floor.debits (account_id, key, amount, balance_after)
      VALUES (${accountId}, ${key}, 1, ${row.balance})`;
  });
}

export async function pipelinedDebitFloor(sql: Sql, accountId: string, key: string): Promise<void> {
  const tx = await sql.reserve();
  try {
    const [, [row]] = await Promise.all([
      tx`BEGIN`,
      tx<{ balance: string }[]>`
        UPDATE bench_floor.balances SET balance = balance - 1
        WHERE account_id = ${accountId} AND balance >= 1 RETURNING balance`,
    ]);
    if (!row) throw new Error(`floor account ${accountId} ran out`);
    const [, commit] = await Promise.all([
      tx`
        INSERT INTO bench_floor.debits (account_id, key, amount, balance_after)
        VALUES (${accountId}, ${key}, 1, ${row.balance})`,
      tx`COMMIT`,
    ]);
    // A COMMIT after a failed statement ends the transaction as a rollback.
    if (commit.command !== 'COMMIT') throw new Error(`debit ${key} rolled back`);
  } catch (error) {
    await tx`ROLLBACK`.catch(() => {});
    throw error;
  } finally {
    tx.release();
  }
}
