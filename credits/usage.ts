import { createHash } from 'node:crypto';
import { availableCredits, planDraws, type PlannedAllocation } from '../domain/credit-grant-rules';
import type { ErrorCode } from '../domain/errors';
import { toSafeInteger } from '../domain/integers';
import {
  accruesFractions,
  creditsForEvent,
  featureFromRow,
  type Feature,
  type FeatureRow,
} from '../domain/usage-pricing';
import { SentWithCommit, transactionCommittingWith, type Queryable, type Sql } from '../db/client';
import { endpointsWant } from '../db/outbound-webhooks/events';
import { watchBalances } from './balance-watch';
import { accountScopedKey } from './debits';
import { applyDraws, liveCredits, readLiveGrants, readSpendingFacts } from './draw-down';
import { recordLedgerEvent } from './follow-ups';
import { keepHoldsCovered } from './holds';
import {
  LEDGER_COLUMNS,
  moveBalances,
  toEntry,
  type BalanceChange,
  type LedgerEntry,
  type LedgerRow,
} from './ledger';

/**
 * Usage: credits spent where the client's product spends them, many events at a time. A request
 * is one transaction with a constant number of statements, whatever the number of events and
 * accounts in it:
 *
 *   1. one round trip: the accounts' balance rows locked in ID order, then (each a statement of
 *      its own, so each sees what committed before the locks were granted) the events already
 *      recorded under these IDs, the features, the meters, the live grants, debt and settings;
 *   2. in memory: each event decided in request order (duplicate, conflict, refused, accepted)
 *      and priced on its meter, the burn summed per account and feature;
 *   3. one round trip: the ledger rows (one per account and feature) with their events, the
 *      balances, the draw-down from grants, the meters (and, when needed, debt and holds), and
 *      the COMMIT with them when nothing follows, so that the locks are held for one round trip;
 *   4. only when something asks for it: outbound events, the balance watch, then the COMMIT.
 *
 * Every event counts once per (account, event ID): requests for one account serialize on its
 * balance lock, taken before the recorded events are read, so of two requests carrying the
 * same event the second sees the first's row; the primary key on (account, event ID) stands
 * behind that. Each event is applied whole or not at all: nothing is written until all is
 * decided, and the transaction commits all of it or none.
 */

export interface UsageEventInput {
  accountId: string;
  /** The client's ID of the event, unique per account. */
  eventId: string;
  feature: string;
  /** Units used: a positive safe integer. */
  quantity: number;
  /** When it happened, as the client says; null: when it was received. */
  occurredAt: Date | null;
  properties: Record<string, unknown> | null;
  /** A hold (made by a check that reserved) this event settles. */
  reservationId: string | null;
}

/** Why an event was refused: a stable code of the catalogue (domain/error-codes.ts). */
export type UsageRefusalCode = Extract<
  ErrorCode,
  | 'account_not_found'
  | 'feature_not_found'
  | 'insufficient_credits'
  | 'invalid_event'
  | 'balance_out_of_range'
  | 'reservation_not_found'
  | 'reservation_settled'
>;

export type UsageOutcome =
  | { status: 'accepted'; credits: number; ledgerEntryId: number | null }
  /** Recorded before: what its first answer said. */
  | { status: 'duplicate'; credits: number; ledgerEntryId: number | null }
  | { status: 'conflict'; code: 'event_id_reused'; message: string }
  | { status: 'refused'; code: UsageRefusalCode; message: string };

export interface UsageBatch {
  /** One per event, in the order given. */
  outcomes: UsageOutcome[];
  /** Accounts whose burn recorded work to start after the commit (a notice, a top-up). */
  followUps: string[];
}

/** The ledger kind of a usage burn. */
export const USAGE_KIND = 'usage';

/** The ledger key of the burn whose first event is `eventId`: unique, since event IDs are per account. */
export const usageKey = (accountId: string, eventId: string) => accountScopedKey('usage', accountId, eventId);

/** The key of an account's overdraft grant, which owes what usage spent beyond its credits. */
export const overdraftKey = (accountId: string) => accountScopedKey('overdraft', accountId, 'debt');

// --- the fingerprint of an event's body -------------------------------------------------------

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * What the client sent about the event, as a digest: the same event ID with another body is a
 * conflict. Property order does not matter; the time received does not count.
 */
export function usageFingerprint(event: UsageEventInput): Buffer {
  const body = canonical([
    event.feature,
    event.quantity,
    event.occurredAt?.toISOString() ?? null,
    event.properties,
    event.reservationId,
  ]);
  return createHash('sha256').update(body).digest().subarray(0, 16);
}

// --- reads of phase 1 ---------------------------------------------------------------------------

interface RecordedEvent {
  fingerprint: Buffer;
  credits: number;
  ledgerEntryId: number | null;
}

const pairKey = (accountId: string, other: string) => `${accountId}\u0000${other}`;

async function readRecordedEvents(
  tx: Queryable,
  events: readonly UsageEventInput[],
): Promise<Map<string, RecordedEvent>> {
  const rows = await tx<
    {
      account_id: string;
      event_id: string;
      fingerprint: Buffer;
      credits: string;
      ledger_entry_id: string | null;
    }[]
  >`
    SELECT e.account_id, e.event_id, e.fingerprint, e.credits::text, e.ledger_entry_id::text
    FROM unnest(${events.map((e) => e.accountId)}::text[], ${events.map((e) => e.eventId)}::text[])
           AS k(account_id, event_id)
    JOIN usage_events e ON e.account_id = k.account_id AND e.event_id = k.event_id`;
  return new Map(
    rows.map((row) => [
      pairKey(row.account_id, row.event_id),
      {
        fingerprint: row.fingerprint,
        credits: toSafeInteger(row.credits, 'credits'),
        ledgerEntryId: row.ledger_entry_id === null ? null : toSafeInteger(row.ledger_entry_id, 'ledger id'),
      },
    ]),
  );
}

async function readFeatures(tx: Queryable, keys: readonly string[]): Promise<Map<string, Feature>> {
  const rows = await tx<FeatureRow[]>`
    SELECT key, name, credits, units, overdraft, active FROM features WHERE key = ANY (${keys as string[]}::text[])`;
  return new Map(rows.map((row) => [row.key, featureFromRow(row)]));
}

/** An account's fractional accrual of one feature (credit_balances.usage_meters). */
interface Meter {
  credits: number;
  units: number;
  /** Units used at this price, as a decimal string (it may pass 2^53). */
  quantity: string;
}

interface LockedAccount {
  balance: number;
  held: number;
  meters: Record<string, Meter>;
}

/**
 * Locks the accounts' balance rows in ID order (as lockAccountBalances does) and reads their
 * meters with them: a locked row is read as it stands once the lock is granted.
 */
async function lockAccounts(
  tx: Queryable,
  accountIds: readonly string[],
): Promise<Map<string, LockedAccount>> {
  const rows = await tx<
    { account_id: string; balance: string; held: string; usage_meters: Record<string, Meter> }[]
  >`
    SELECT account_id, balance, held, usage_meters FROM credit_balances
    WHERE account_id = ANY (${accountIds as string[]}::text[])
    ORDER BY account_id FOR UPDATE`;
  return new Map(
    rows.map((row) => [
      row.account_id,
      {
        balance: toSafeInteger(row.balance, 'balance'),
        held: toSafeInteger(row.held, 'held'),
        meters: row.usage_meters,
      },
    ]),
  );
}

interface NamedHold {
  accountId: string;
  status: string;
  holding: number;
  lapsed: boolean;
}

async function lockNamedHolds(tx: Queryable, ids: readonly string[]): Promise<Map<string, NamedHold>> {
  if (ids.length === 0) return new Map();
  const rows = await tx<
    { id: string; account_id: string; status: string; holding: string; lapsed: boolean }[]
  >`
    SELECT id, account_id, status, (amount - shrunk)::text AS holding, expires_at <= now() AS lapsed
    FROM credit_reservations WHERE id = ANY (${ids as string[]}::text[])
    ORDER BY id FOR UPDATE`;
  return new Map(
    rows.map((row) => [
      row.id,
      {
        accountId: row.account_id,
        status: row.status,
        holding: toSafeInteger(row.holding, 'holding'),
        lapsed: row.lapsed,
      },
    ]),
  );
}

// --- the decision (phase 2) ---------------------------------------------------------------------

/** An account as the request spends it. */
interface AccountBurn {
  balance: number;
  held: number;
  live: number;
  debt: number;
  watched: boolean;
  /** Credits burned so far in this request, taken from live grants, and run up as debt. */
  burned: number;
  fromLive: number;
  owed: number;
  /** Credits of holds that events of this request settled. */
  released: number;
}

/** One ledger row: the events of one account and feature in this request. */
interface Charge {
  accountId: string;
  feature: Feature;
  key: string;
  events: number;
  credits: number;
  fromLive: number;
  owed: number;
  /** The meter's units after the request, when the price accrues fractions. */
  meter: { quantity: bigint } | null;
}

const refused = (code: UsageRefusalCode, message: string): UsageOutcome => ({
  status: 'refused',
  code,
  message,
});

/**
 * Records a batch of usage events in one transaction and burns their credits: see the top of
 * this file. Events must have been validated (credits/usage does not check shapes); the same
 * (account, event ID) twice in one batch is refused after its first.
 */
export async function recordUsage(sql: Sql, events: readonly UsageEventInput[]): Promise<UsageBatch> {
  if (events.length === 0) return { outcomes: [], followUps: [] };
  const fingerprints = events.map(usageFingerprint);
  const accountIds = [...new Set(events.map((e) => e.accountId))];
  const featureKeys = [...new Set(events.map((e) => e.feature))];
  const holdIds = [...new Set(events.flatMap((e) => (e.reservationId === null ? [] : [e.reservationId])))];

  return transactionCommittingWith(sql, async (tx): Promise<UsageBatch | SentWithCommit<UsageBatch>> => {
    // 1. The locks, then everything the decisions need, in one round trip.
    const [locked, recorded, features, grants, facts, announce, holds] = await Promise.all([
      lockAccounts(tx, accountIds),
      readRecordedEvents(tx, events),
      readFeatures(tx, featureKeys),
      readLiveGrants(tx, accountIds),
      readSpendingFacts(tx, accountIds),
      endpointsWant(tx, 'credits.debited'),
      lockNamedHolds(tx, holdIds),
    ]);

    // 2. Each event in request order.
    const accounts = new Map<string, AccountBurn>();
    for (const [accountId, { balance, held }] of locked) {
      accounts.set(accountId, {
        balance,
        held,
        live: liveCredits(grants.get(accountId)),
        debt: facts.get(accountId)?.debt ?? 0,
        watched: facts.get(accountId)?.watched ?? false,
        burned: 0,
        fromLive: 0,
        owed: 0,
        released: 0,
      });
    }
    const charges = new Map<string, Charge>();
    const seen = new Set<string>();
    const settled = new Map<string, { credits: number; holding: number }>();
    const accepted: Array<{ index: number; charge: Charge; credits: number }> = [];
    const outcomes: UsageOutcome[] = events.map((event, index) => {
      const account = accounts.get(event.accountId);
      if (!account) return refused('account_not_found', `No account with ID ${event.accountId}.`);
      const id = pairKey(event.accountId, event.eventId);
      if (seen.has(id))
        return refused('invalid_event', 'This event ID appears more than once in the request.');
      seen.add(id);
      const before = recorded.get(id);
      if (before) {
        return before.fingerprint.equals(fingerprints[index] ?? Buffer.alloc(0))
          ? { status: 'duplicate', credits: before.credits, ledgerEntryId: before.ledgerEntryId }
          : {
              status: 'conflict',
              code: 'event_id_reused',
              message: `Event ${event.eventId} was recorded before with another body.`,
            };
      }
      const feature = features.get(event.feature);
      if (!feature?.active) return refused('feature_not_found', `No active feature ${event.feature}.`);

      let freed = 0;
      if (event.reservationId !== null) {
        const hold = holds.get(event.reservationId);
        if (!hold || hold.accountId !== event.accountId) {
          return refused('reservation_not_found', `No reservation ${event.reservationId} on this account.`);
        }
        if (hold.status !== 'held' || hold.lapsed || settled.has(event.reservationId)) {
          return refused('reservation_settled', `Reservation ${event.reservationId} is no longer held.`);
        }
        freed = hold.holding;
      }

      const chargeKey = pairKey(event.accountId, feature.key);
      const charge = charges.get(chargeKey);
      const accrues = accruesFractions(feature);
      const accrued =
        charge?.meter?.quantity ?? (accrues ? meteredUnits(locked.get(event.accountId), feature) : 0n);
      const quantity = BigInt(event.quantity);
      const exact = creditsForEvent(accrued, quantity, feature);
      if (exact > BigInt(Number.MAX_SAFE_INTEGER)) {
        return refused('balance_out_of_range', 'This event would cost more credits than a balance can hold.');
      }
      const credits = Number(exact);
      const available = availableCredits({
        live: account.live - account.fromLive,
        debt: account.debt + account.owed,
        held: account.held - account.released - freed,
      });
      if (feature.overdraft === 'refuse' && credits > available) {
        return refused(
          'insufficient_credits',
          `This event costs ${credits} credits; ${Math.max(available, 0)} are available.`,
        );
      }
      // What the request burns for the account is summed in JS numbers: past 2^53 the sum would
      // round, and the ledger row would no longer equal its events.
      if (!Number.isSafeInteger(account.burned + credits)) {
        return refused('balance_out_of_range', 'This request burns more credits than a balance can hold.');
      }
      if (!Number.isSafeInteger(account.balance - account.burned - credits)) {
        return refused('balance_out_of_range', 'This event would take the balance past what it can hold.');
      }

      const fromLive = Math.min(credits, Math.max(available, 0));
      const target =
        charge ??
        ({
          accountId: event.accountId,
          feature,
          key: usageKey(event.accountId, event.eventId),
          events: 0,
          credits: 0,
          fromLive: 0,
          owed: 0,
          meter: accrues ? { quantity: accrued } : null,
        } satisfies Charge);
      charges.set(chargeKey, target);
      target.events += 1;
      target.credits += credits;
      target.fromLive += fromLive;
      target.owed += credits - fromLive;
      if (target.meter) target.meter.quantity += quantity;
      account.burned += credits;
      account.fromLive += fromLive;
      account.owed += credits - fromLive;
      account.released += freed;
      if (event.reservationId !== null) settled.set(event.reservationId, { credits, holding: freed });
      accepted.push({ index, charge: target, credits });
      return { status: 'accepted', credits, ledgerEntryId: null };
    });
    if (accepted.length === 0) return { outcomes, followUps: [] };

    // The ledger rows, in the order their first events came, each with the balance it left.
    const running = new Map<string, number>();
    const burns = [...charges.values()].filter((charge) => charge.credits > 0);
    const movements = burns.map((charge) => {
      const account = accounts.get(charge.accountId) as AccountBurn;
      const after = (running.get(charge.accountId) ?? account.balance) - charge.credits;
      running.set(charge.accountId, after);
      return {
        accountId: charge.accountId,
        delta: -charge.credits,
        businessKey: charge.key,
        reason: `${charge.events} ${charge.events === 1 ? 'event' : 'events'} of ${charge.feature.key}`,
        balanceAfter: after,
      };
    });
    // The draw-down: per account, its charges in order, from its live grants.
    const fromLive = new Map<string, Charge[]>();
    for (const charge of burns) {
      if (charge.fromLive > 0)
        fromLive.set(charge.accountId, [...(fromLive.get(charge.accountId) ?? []), charge]);
    }
    const allocations: PlannedAllocation[] = [];
    for (const [accountId, mine] of fromLive) {
      const plan = planDraws(
        grants.get(accountId) ?? [],
        mine.map((charge) => ({ key: charge.key, amount: charge.fromLive })),
      );
      if (plan.drawn.some((drawn, i) => drawn !== mine[i]?.fromLive)) {
        throw new Error(`the live grants of ${accountId} did not cover what was available`);
      }
      allocations.push(...plan.allocations);
    }
    const owing = burns.filter((charge) => charge.owed > 0);

    // 3. The writes, in one round trip: with the COMMIT, when nothing follows them.
    const written = Promise.all([
      writeChargesAndEvents(tx, movements, events, fingerprints, accepted),
      moveBalances(tx, balanceChanges(accounts, charges)),
      applyDraws(tx, allocations),
      owing.length > 0 ? runUpDebt(tx, owing) : null,
      settled.size > 0 ? settleNamedHolds(tx, settled) : null,
    ]).then(([entries]) => {
      const ledgerIds = new Map(entries.map((entry) => [entry.businessKey, entry.id]));
      for (const { index, charge, credits } of accepted) {
        outcomes[index] = { status: 'accepted', credits, ledgerEntryId: ledgerIds.get(charge.key) ?? null };
      }
      return entries;
    });

    // 4. What the burn causes, when anything asks for it.
    const indebted = [...new Set(owing.map((charge) => charge.accountId))];
    const watched = [...accounts].filter(
      ([, account]) => account.watched && account.burned + account.released > 0,
    );
    if (indebted.length === 0 && !announce && watched.length === 0) {
      return new SentWithCommit(written.then(() => ({ outcomes, followUps: [] })));
    }
    const entries = await written;
    if (indebted.length > 0) await keepHoldsCovered(tx, indebted, 'usage ran the account into debt');
    if (announce) await Promise.all(entries.map((entry) => recordLedgerEvent(tx, entry)));
    const followUps = await watchBalances(
      tx,
      watched.map(([accountId]) => accountId),
      { spending: true },
    );
    return { outcomes, followUps };
  });
}

// --- writes of phase 3 --------------------------------------------------------------------------

/**
 * The ledger rows and the accepted events in one statement: each event names the row that burned
 * its credits (none when its charge burned no whole credit yet).
 */
async function writeChargesAndEvents(
  tx: Queryable,
  movements: ReadonlyArray<{
    accountId: string;
    delta: number;
    businessKey: string;
    reason: string;
    balanceAfter: number;
  }>,
  events: readonly UsageEventInput[],
  fingerprints: readonly Buffer[],
  accepted: ReadonlyArray<{ index: number; charge: Charge; credits: number }>,
): Promise<LedgerEntry[]> {
  const picked = accepted.map(({ index, charge, credits }) => ({
    event: events[index] as UsageEventInput,
    fingerprint: fingerprints[index] as Buffer,
    key: charge.credits > 0 ? charge.key : null,
    credits,
  }));
  const rows = await tx<LedgerRow[]>`
    WITH ledger AS (
      INSERT INTO credit_ledger (account_id, delta, kind, business_key, reason, balance_after)
      SELECT account_id, delta, ${USAGE_KIND}, business_key, reason, balance_after
      FROM unnest(${movements.map((m) => m.accountId)}::text[], ${movements.map((m) => m.delta)}::bigint[],
                  ${movements.map((m) => m.businessKey)}::text[], ${movements.map((m) => m.reason)}::text[],
                  ${movements.map((m) => m.balanceAfter)}::bigint[])
             AS m(account_id, delta, business_key, reason, balance_after)
      RETURNING ${tx.unsafe(LEDGER_COLUMNS)}
    ),
    events AS (
      INSERT INTO usage_events (account_id, event_id, feature, quantity, occurred_at, received_at, properties,
                                fingerprint, credits, ledger_entry_id, reservation_id)
      SELECT e.account_id, e.event_id, e.feature, e.quantity, COALESCE(e.occurred_at, now()), now(),
             e.properties::jsonb, decode(e.fingerprint, 'hex'), e.credits, l.id, e.reservation_id
      FROM unnest(${picked.map((p) => p.event.accountId)}::text[], ${picked.map((p) => p.event.eventId)}::text[],
                  ${picked.map((p) => p.event.feature)}::text[], ${picked.map((p) => p.event.quantity)}::bigint[],
                  ${picked.map((p) => p.event.occurredAt?.toISOString() ?? null)}::timestamptz[],
                  ${picked.map((p) => (p.event.properties === null ? null : JSON.stringify(p.event.properties)))}::text[],
                  ${picked.map((p) => p.fingerprint.toString('hex'))}::text[], ${picked.map((p) => p.credits)}::bigint[],
                  ${picked.map((p) => p.key)}::text[], ${picked.map((p) => p.event.reservationId)}::text[])
             AS e(account_id, event_id, feature, quantity, occurred_at, properties, fingerprint, credits,
                  ledger_key, reservation_id)
      LEFT JOIN ledger l ON l.business_key = e.ledger_key
      RETURNING 1
    )
    SELECT ${tx.unsafe(LEDGER_COLUMNS)} FROM ledger ORDER BY id`;
  return rows.map(toEntry);
}

/**
 * What usage of features that allow debt spent beyond the available credits: owed by the
 * account's overdraft grant (made on first need), and allocated to it under each charge's key.
 */
async function runUpDebt(tx: Queryable, owing: readonly Charge[]): Promise<void> {
  const perAccount = new Map<string, number>();
  for (const charge of owing)
    perAccount.set(charge.accountId, (perAccount.get(charge.accountId) ?? 0) + charge.owed);
  const accountIds = [...perAccount.keys()];
  await tx`
    WITH debt AS (
      INSERT INTO credit_grants (account_id, source, category, priority, amount, remaining, drawn, owed,
                                 business_key, reason)
      SELECT account_id, 'overdraft', 'paid', 1000, owed, 0, owed, owed, business_key,
             'usage beyond the available credits, owed until new credits repay it'
      FROM unnest(${accountIds}::text[], ${[...perAccount.values()]}::bigint[],
                  ${accountIds.map(overdraftKey)}::text[]) AS d(account_id, owed, business_key)
      ON CONFLICT (business_key) DO UPDATE
        SET amount = credit_grants.amount + EXCLUDED.amount, drawn = credit_grants.drawn + EXCLUDED.drawn,
            owed = credit_grants.owed + EXCLUDED.owed
      RETURNING id, account_id
    )
    INSERT INTO credit_allocations (business_key, grant_id, amount)
    SELECT c.key, debt.id, c.owed
    FROM unnest(${owing.map((c) => c.key)}::text[], ${owing.map((c) => c.accountId)}::text[],
                ${owing.map((c) => c.owed)}::bigint[]) WITH ORDINALITY AS c(key, account_id, owed, n)
    JOIN debt ON debt.account_id = c.account_id
    ORDER BY c.n`;
}

/** The units an account's meter counted for this feature at its current price (none at another). */
function meteredUnits(account: LockedAccount | undefined, feature: Feature): bigint {
  const meter = account?.meters[feature.key];
  return meter && meter.credits === feature.credits && meter.units === feature.units
    ? BigInt(meter.quantity)
    : 0n;
}

/** Each account's balance change: what it burned, the holds it settled, its meters as they now stand. */
function balanceChanges(
  accounts: ReadonlyMap<string, AccountBurn>,
  charges: ReadonlyMap<string, Charge>,
): BalanceChange[] {
  const meters = new Map<string, Record<string, Meter>>();
  for (const charge of charges.values()) {
    if (!charge.meter) continue;
    const mine = meters.get(charge.accountId) ?? {};
    mine[charge.feature.key] = {
      credits: charge.feature.credits,
      units: charge.feature.units,
      quantity: charge.meter.quantity.toString(),
    };
    meters.set(charge.accountId, mine);
  }
  return [...accounts].map(([accountId, account]) => ({
    accountId,
    delta: -account.burned,
    released: account.released,
    meters: meters.get(accountId) ?? null,
  }));
}

/**
 * Holds settled by the events that named them: captured for what the event burned (at most what
 * the hold held), or released when it burned no whole credit. Their credits were freed in the
 * balance update, so that the event could spend them.
 */
async function settleNamedHolds(
  tx: Queryable,
  settled: ReadonlyMap<string, { credits: number; holding: number }>,
): Promise<void> {
  const ids = [...settled.keys()];
  const captured = [...settled.values()].map(({ credits, holding }) => Math.min(credits, holding));
  await tx`
    UPDATE credit_reservations r
    SET status = CASE WHEN s.captured > 0 THEN 'captured' ELSE 'released' END,
        captured = NULLIF(s.captured, 0), settled_at = now()
    FROM unnest(${ids}::text[], ${captured}::bigint[]) AS s(id, captured)
    WHERE r.id = s.id`;
}
