import type { Sql } from '../../../db/client';
import { createAccounts, createGrant, type UsageEventInput } from '../../../credits/index';
import { runPool } from '../../bench-support';
import { Random } from '../../chaos/random';

/**
 * What the usage benchmark sends: batches of events for many accounts or one, the same batches
 * to the service and to the raw floors (each under its own event IDs), and the accounts, funded
 * through the credit engine so that no event is refused for want of credits.
 */

/** The feature every batch names: 1 credit per 1,000 tokens, so fractions accrue on meters. */
export const BENCH_FEATURE = 'llm-tokens';

export interface BenchEvent {
  accountId: string;
  eventId: string;
  quantity: number;
}

const hex = (random: Random, length: number) =>
  Array.from({ length }, () => random.int(0, 15).toString(16)).join('');

/** `events` events in batches of `size`, each for an account drawn at random, IDs random. */
export function buildBatches(
  random: Random,
  options: { events: number; size: number; accounts: readonly string[]; label: string },
): BenchEvent[][] {
  const batches: BenchEvent[][] = [];
  for (let start = 0; start < options.events; start += options.size) {
    const count = Math.min(options.size, options.events - start);
    batches.push(
      Array.from({ length: count }, () => ({
        accountId: random.pick(options.accounts),
        eventId: `${options.label}-${hex(random, 24)}`,
        quantity: random.int(1, 4000),
      })),
    );
  }
  return batches;
}

/** The body of POST /v1/usage for a batch, as a client sends it (a small properties object each). */
export const usageBody = (batch: readonly BenchEvent[]): string =>
  JSON.stringify({
    events: batch.map((event) => ({
      id: event.eventId,
      accountId: event.accountId,
      feature: BENCH_FEATURE,
      quantity: event.quantity,
      properties: { model: 'small' },
    })),
  });

/** The same events as the credit engine takes them once the API has checked them. */
export const engineEvents = (batch: readonly BenchEvent[]): UsageEventInput[] =>
  batch.map((event) => ({
    accountId: event.accountId,
    eventId: event.eventId,
    feature: BENCH_FEATURE,
    quantity: event.quantity,
    occurredAt: null,
    properties: { model: 'small' },
    reservationId: null,
  }));

/** Accounts holding `credits` each, in one grant (no expiry), made through the engine. */
export async function seedAccounts(sql: Sql, ids: readonly string[], credits: number): Promise<void> {
  await createAccounts(
    sql,
    ids.map((id) => ({ id, email: `${id}@bench.test` })),
  );
  await runPool(ids.length, 8, async (index) => {
    const accountId = ids[index] ?? '';
    await sql.begin((tx) =>
      createGrant(tx, {
        accountId,
        source: 'manual',
        category: 'paid',
        priority: 100,
        expiresAt: null,
        amount: credits,
        businessKey: `bench-seed:${accountId}`,
        kind: 'grant',
        reason: 'benchmark funds',
      }),
    );
  });
}

/**
 * History for the growth run: `events` usage events (no credits, no ledger row) and `ledgerRows`
 * ledger rows (pairs of −1 and +1, so that every balance stays what its grants hold) spread evenly
 * over the accounts, written straight into the tables by generate_series in chunks. Rows are
 * generated account by account with IDs rising within each account (as time-ordered IDs such as
 * ULIDs rise), so each chunk appends to the indexes instead of writing all over them: 10 million
 * events load in minutes. The benchmark's own events, named after them, land at the end of each
 * account's range, as the next events of a client with time-ordered IDs would.
 */
export async function storeHistory(
  sql: Sql,
  accounts: readonly string[],
  counts: { events: number; ledgerRows: number },
  progress: (line: string) => void,
): Promise<void> {
  const chunk = 500_000;
  const ids = [...accounts].sort();
  const eventsPerAccount = Math.ceil(counts.events / ids.length);
  for (let done = 0; done < counts.events; done += chunk) {
    const n = Math.min(chunk, counts.events - done);
    await sql`
      INSERT INTO usage_events (account_id, event_id, feature, quantity, occurred_at, received_at, properties,
                                fingerprint, credits)
      SELECT (${ids}::text[])[(1 + i / ${eventsPerAccount})::int], 'history-' || lpad(i::text, 10, '0'), ${BENCH_FEATURE},
             1 + (i % 4000), now() - interval '60 days' + (i % ${eventsPerAccount}) * interval '100 ms',
             now() - interval '60 days' + (i % ${eventsPerAccount}) * interval '100 ms',
             '{"model":"small"}', decode(md5(i::text), 'hex'), 0
      FROM generate_series(${done}::bigint, ${done + n - 1}::bigint) AS i`;
    progress(`history: ${done + n} of ${counts.events} usage events stored`);
  }
  const pairsPerAccount = Math.ceil(counts.ledgerRows / 2 / ids.length);
  for (let done = 0; done < counts.ledgerRows; done += chunk) {
    const n = Math.min(chunk, counts.ledgerRows - done);
    await sql`
      WITH rows AS (
        SELECT i, (${ids}::text[])[(1 + (i / 2) / ${pairsPerAccount})::int] AS account_id,
               CASE WHEN i % 2 = 0 THEN -1 ELSE 1 END AS delta
        FROM generate_series(${done}::bigint, ${done + n - 1}::bigint) AS i
      )
      INSERT INTO credit_ledger (account_id, delta, kind, business_key, reason, balance_after, created_at)
      SELECT r.account_id, r.delta, CASE WHEN r.delta < 0 THEN 'debit' ELSE 'grant' END, 'history:' || r.i,
             'benchmark history', b.balance + CASE WHEN r.delta < 0 THEN -1 ELSE 0 END,
             now() - interval '60 days'
      FROM rows r JOIN credit_balances b ON b.account_id = r.account_id
      ORDER BY r.i`;
    progress(`history: ${done + n} of ${counts.ledgerRows} ledger rows stored`);
  }
  await sql`VACUUM ANALYZE usage_events`;
  await sql`VACUUM ANALYZE credit_ledger`;
}
