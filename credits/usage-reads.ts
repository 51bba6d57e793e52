import { availableCredits } from '../domain/credit-grant-rules';
import { errors } from '../domain/errors';
import { toSafeInteger } from '../domain/integers';
import {
  accruesFractions,
  creditsForEvent,
  featureFromRow,
  type Feature,
  type FeatureRow,
} from '../domain/usage-pricing';
import type { Queryable, Sql } from '../db/client';
import { live } from './draw-down';

/**
 * What usage looks like from outside: the events of an account (and of one ledger row), what a
 * quantity would cost now (a check: one read, no write), the balance at a past moment, and the
 * retention of event properties. None of these takes a lock.
 */

export interface UsageEvent {
  eventId: string;
  feature: string;
  quantity: number;
  occurredAt: Date;
  receivedAt: Date;
  properties: Record<string, unknown> | null;
  credits: number;
  ledgerEntryId: number | null;
  reservationId: string | null;
}

/** Where a page of events ends: the last event's receipt time (µs since the epoch) and sequence. */
export interface UsagePosition {
  receivedAtMicros: string;
  seq: string;
}

interface UsageEventRow {
  event_id: string;
  feature: string;
  quantity: string;
  occurred_at: Date;
  received_at: Date;
  received_micros: string;
  seq: string;
  properties: Record<string, unknown> | null;
  credits: string;
  ledger_entry_id: string | null;
  reservation_id: string | null;
}

/**
 * One page of an account's usage events, newest received first, strictly after `after` when
 * given; with `ledgerEntryId`, only the events whose credits that ledger row burned (it was
 * written in their transaction, so they share its time: the listing index finds them).
 */
export async function listUsageEvents(
  sql: Queryable,
  accountId: string,
  page: { limit: number; after: UsagePosition | null; ledgerEntryId: number | null },
): Promise<Array<UsageEvent & { position: UsagePosition }>> {
  const after = page.after;
  const rows = await sql<UsageEventRow[]>`
    SELECT event_id, feature, quantity::text, occurred_at, received_at,
           (extract(epoch FROM received_at) * 1000000)::bigint::text AS received_micros, seq::text,
           properties, credits::text, ledger_entry_id::text, reservation_id
    FROM usage_events
    WHERE account_id = ${accountId}
      ${
        page.ledgerEntryId === null
          ? sql``
          : sql`AND received_at = (SELECT created_at FROM credit_ledger
                                   WHERE id = ${page.ledgerEntryId} AND account_id = ${accountId})
                AND ledger_entry_id = ${page.ledgerEntryId}`
      }
      ${
        after === null
          ? sql``
          : sql`AND (received_at, seq) < (timestamptz 'epoch' + (${after.receivedAtMicros} || ' microseconds')::interval,
                                         ${after.seq}::bigint)`
      }
    ORDER BY received_at DESC, seq DESC
    LIMIT ${page.limit}`;
  return rows.map((row) => ({
    eventId: row.event_id,
    feature: row.feature,
    quantity: toSafeInteger(row.quantity, 'quantity'),
    occurredAt: row.occurred_at,
    receivedAt: row.received_at,
    properties: row.properties,
    credits: toSafeInteger(row.credits, 'credits'),
    ledgerEntryId: row.ledger_entry_id === null ? null : toSafeInteger(row.ledger_entry_id, 'ledger id'),
    reservationId: row.reservation_id,
    position: { receivedAtMicros: row.received_micros, seq: row.seq },
  }));
}

export interface UsageQuote {
  feature: Feature;
  /** What the quantity would burn now, on the account's meter as it stands. */
  credits: number;
  available: number;
  balance: number;
  /** Whether usage of that quantity would be accepted now. */
  allowed: boolean;
}

/**
 * What `quantity` units of a feature would cost the account now, and whether it may spend them:
 * the burn's own rule (credits/usage.ts) on the meter as it stands, in one read.
 */
export async function quoteUsage(
  sql: Queryable,
  request: { accountId: string; feature: string; quantity: number },
): Promise<UsageQuote> {
  const [row] = await sql<
    (Omit<FeatureRow, 'key'> & {
      /** Null: no feature of that key (the join found none). */
      key: string | null;
      balance: string;
      held: string;
      meter: { credits: number; units: number; quantity: string } | null;
      live: string;
      debt: string;
    })[]
  >`
    SELECT b.balance::text, b.held::text, b.usage_meters -> f.key AS meter,
           f.key, f.name, f.credits::text, f.units::text, f.overdraft, f.active,
           COALESCE((SELECT SUM(g.remaining) FROM credit_grants g
                     WHERE g.account_id = b.account_id AND ${sql.unsafe(live('g.'))}), 0)::text AS live,
           COALESCE((SELECT SUM(g.owed) FROM credit_grants g
                     WHERE g.account_id = b.account_id AND g.owed > 0), 0)::text AS debt
    FROM credit_balances b LEFT JOIN features f ON f.key = ${request.feature}
    WHERE b.account_id = ${request.accountId}`;
  if (!row) throw errors.accountNotFound(request.accountId);
  if (row.key === null || !row.active) throw errors.featureNotFound(request.feature);
  const feature = featureFromRow({ ...row, key: row.key });
  const meter = row.meter;
  const accrued =
    accruesFractions(feature) && meter && meter.credits === feature.credits && meter.units === feature.units
      ? BigInt(meter.quantity)
      : 0n;
  const exact = creditsForEvent(accrued, BigInt(request.quantity), feature);
  const available = availableCredits({
    live: toSafeInteger(row.live, 'live credits'),
    debt: toSafeInteger(row.debt, 'debt'),
    held: toSafeInteger(row.held, 'held'),
  });
  const fits = exact <= BigInt(Number.MAX_SAFE_INTEGER);
  const credits = fits ? Number(exact) : Number.MAX_SAFE_INTEGER;
  return {
    feature,
    credits,
    available,
    balance: toSafeInteger(row.balance, 'balance'),
    allowed: fits && (feature.overdraft === 'allow' || credits <= available),
  };
}

export interface BalanceAt {
  /** The balance the last ledger row at or before the moment left (0 before the first). */
  balance: number;
  /** Credits held then: holds made by then and not settled by then, less what they had shrunk by then. */
  held: number;
  /** What could be spent then: the balance less what was held, never below zero by holds. */
  available: number;
  /** The ledger row the balance comes from (null before the first). */
  ledgerEntryId: number | null;
}

/**
 * An account's balance and available credits as they were at `at`, from the ledger and the holds.
 * The balance is what grants held less what was owed, as the ledger recorded it; credits whose
 * grant had passed its expiry count until the expiry's own ledger row.
 */
export async function balanceAt(sql: Queryable, accountId: string, at: Date): Promise<BalanceAt> {
  const [row] = await sql<
    { found: boolean; entry_id: string | null; balance: string | null; held: string }[]
  >`
    SELECT EXISTS (SELECT 1 FROM credit_balances WHERE account_id = ${accountId}) AS found,
           l.id::text AS entry_id, l.balance_after::text AS balance,
           (SELECT COALESCE(SUM(r.amount - CASE WHEN r.shrunk_at <= ${at} THEN r.shrunk ELSE 0 END), 0)
            FROM credit_reservations r
            WHERE r.account_id = ${accountId} AND r.created_at <= ${at}
              AND (r.settled_at IS NULL OR r.settled_at > ${at}))::text AS held
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (
      SELECT id, balance_after FROM credit_ledger
      WHERE account_id = ${accountId} AND created_at <= ${at}
      ORDER BY id DESC LIMIT 1
    ) l ON true`;
  if (!row?.found) throw errors.accountNotFound(accountId);
  const balance = row.balance === null ? 0 : toSafeInteger(row.balance, 'balance');
  const held = toSafeInteger(row.held, 'held');
  return {
    balance,
    held,
    available: availableCredits({ live: balance, debt: 0, held }),
    ledgerEntryId: row.entry_id === null ? null : toSafeInteger(row.entry_id, 'ledger id'),
  };
}

/**
 * Retention: clears the properties of events received more than `retentionSeconds` ago, at most
 * `limit` of them, oldest first; the events themselves stay (a replay of one is still a
 * duplicate). A watermark remembers how far earlier runs got, so each run reads only what aged
 * since. Answers how many events it cleared; fewer than `limit` means none is left.
 */
export async function forgetUsageProperties(
  sql: Sql,
  retentionSeconds: number,
  limit: number,
): Promise<number> {
  return sql.begin(async (tx) => {
    // The watermark may be -infinity (nothing swept yet), which has no Date: it stays in SQL.
    const [state] = await tx`SELECT 1 FROM usage_retention FOR UPDATE`;
    if (!state) throw new Error('usage_retention has no row');
    const cutoff = tx`now() - make_interval(secs => ${retentionSeconds})`;
    const cleared = await tx`
      UPDATE usage_events SET properties = NULL
      WHERE ctid = ANY (ARRAY(
        SELECT e.ctid FROM usage_events e, usage_retention r
        WHERE e.received_at >= r.swept_before AND e.received_at < ${cutoff} AND e.properties IS NOT NULL
        LIMIT ${limit}))`;
    if (cleared.count < limit) {
      await tx`UPDATE usage_retention SET swept_before = ${cutoff}, swept_at = now()`;
    }
    return cleared.count;
  });
}
