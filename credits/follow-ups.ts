import type { Queryable, Sql } from '../db/client';
import { outboundEventId, queueOutboundEvent } from '../db/outbound-webhooks/events';
import { toSafeInteger } from '../domain/integers';
import { ledgerEventType } from '../domain/outbound-events';
import { OUTCOME_UNKNOWN_FAILURE_CODES } from '../domain/topup-rules';
import type { LedgerEntry } from './ledger';

/**
 * What a credit movement causes, written as rows in the movement's own transaction, so that it
 * happens exactly when the movement commits and is never lost after it: the outbound event the
 * clients' endpoints receive (`credits.*` for every movement, `balance.low` for a crossing of the
 * low-balance threshold), and a follow-up for each consequence that needs work after the commit,
 * as a kind and its facts. The engine knows no workflow, email or payment: the top-up room maps a
 * kind to the workflow that does the work (temporal/follow-ups.ts) and starts it.
 */

/** The n-th crossing of an account's low-balance threshold: what its notice says. */
export interface LowBalanceNoticeFacts {
  /** Counts the account's notices from 1; the notice's keys are made from it. */
  notice: number;
  available: number;
  threshold: number;
  /** Whether automatic top-up was on when the balance crossed. */
  autoTopup: boolean;
}

/** A top-up opened by a crossing of the account's top-up threshold. */
export interface TopupFacts {
  topupId: string;
}

export type FollowUp =
  | { kind: 'low_balance_notice'; key: string; accountId: string; facts: LowBalanceNoticeFacts }
  | { kind: 'topup'; key: string; accountId: string; facts: TopupFacts };

export type FollowUpKind = FollowUp['kind'];

/** The key of the n-th low-balance crossing of an account: its follow-up and its event are keyed by it. */
export const lowBalanceCrossingKey = (accountId: string, notice: number) =>
  `low-balance:${accountId}:${notice}`;

/** The key of the follow-up that runs a top-up. */
export const topupFollowUpKey = (topupId: string) => `topup:${topupId}`;

/**
 * Tells the clients' endpoints about a movement: every balance change passes here, so none goes
 * unreported. The event's ID comes from the movement's business key.
 */
export async function recordLedgerEvent(tx: Queryable, entry: LedgerEntry): Promise<void> {
  const type = ledgerEventType(entry.delta, entry.kind);
  await queueOutboundEvent(tx, {
    id: outboundEventId(type, entry.businessKey),
    type,
    accountId: entry.accountId,
    data: {
      ledger_entry_id: entry.id,
      kind: entry.kind,
      credits: Math.abs(entry.delta),
      delta: entry.delta,
      balance_after: entry.balanceAfter,
      reference: entry.businessKey,
      reason: entry.reason,
      created_at: entry.createdAt.toISOString(),
    },
  });
}

/** A downward crossing of the low-balance threshold: `balance.low` and the notice to send. */
export async function recordLowBalanceCrossing(
  tx: Queryable,
  accountId: string,
  facts: LowBalanceNoticeFacts,
): Promise<void> {
  const key = lowBalanceCrossingKey(accountId, facts.notice);
  await queueOutboundEvent(tx, {
    id: outboundEventId('balance.low', key),
    type: 'balance.low',
    accountId,
    data: { available: facts.available, threshold: facts.threshold, notice: facts.notice },
  });
  await recordFollowUp(tx, { kind: 'low_balance_notice', key, accountId, facts });
}

/** The month (UTC) a top-up counts against, as its first day. */
const CAP_MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC')::date";

/**
 * A downward crossing of the top-up threshold: opens a top-up of what the settings buy, and its
 * follow-up, unless one is open already (the partial unique index) or it would take the month's
 * top-ups past the cap. The caller's UPDATE locked the settings row, so top-ups of one account are
 * opened one at a time and the cap's sum is never stale. Answers whether it opened one.
 */
export async function recordTopupCrossing(tx: Queryable, accountId: string): Promise<boolean> {
  const [opened] = await tx<{ id: string }[]>`
    WITH s AS (
      SELECT t.pack_id, t.monthly_cap_cents,
             COALESCE(p.credits, t.credits) AS credits,
             COALESCE(p.price_cents, t.amount_cents) AS amount_cents,
             COALESCE(p.currency, t.currency) AS currency
      FROM topup_settings t LEFT JOIN credit_packs p ON p.id = t.pack_id AND p.active
      WHERE t.account_id = ${accountId} AND t.enabled
    ),
    used AS (
      -- The cap is in the currency charged: other currencies' top-ups of the month (before the
      -- settings changed currency) are not in it. A failure whose charge may have gone through
      -- still counts: its late success is granted whatever the cap says (domain/topup-rules.ts).
      SELECT COALESCE(SUM(u.amount_cents), 0) AS cents FROM topups u, s
      WHERE u.account_id = ${accountId} AND u.month = ${tx.unsafe(CAP_MONTH)} AND u.currency = s.currency
        AND (u.status <> 'failed' OR u.failure_code = ANY (${[...OUTCOME_UNKNOWN_FAILURE_CODES]}))
    )
    INSERT INTO topups (account_id, pack_id, credits, amount_cents, currency, month)
    SELECT ${accountId}, s.pack_id, s.credits, s.amount_cents, s.currency, ${tx.unsafe(CAP_MONTH)}
    FROM s, used WHERE used.cents + s.amount_cents <= s.monthly_cap_cents
    ON CONFLICT (account_id) WHERE status IN ('pending', 'charging') DO NOTHING
    RETURNING id`;
  if (!opened) {
    const [open] = await tx`
      SELECT 1 FROM topups WHERE account_id = ${accountId} AND status IN ('pending', 'charging')`;
    // Past the cap, the threshold stays armed: the balance may never climb back above it, and
    // the first debit below it in the next month (UTC) must top up. An open top-up re-arms it itself.
    await tx`
      UPDATE topup_settings
      SET last_skipped_reason = ${open ? 'a top-up is already in progress' : 'the monthly cap is reached'},
          armed = ${!open}
      WHERE account_id = ${accountId}`;
    return false;
  }
  await tx`UPDATE topup_settings SET last_skipped_reason = NULL WHERE account_id = ${accountId}`;
  await recordFollowUp(tx, {
    kind: 'topup',
    key: topupFollowUpKey(opened.id),
    accountId,
    facts: { topupId: opened.id },
  });
  return true;
}

async function recordFollowUp(tx: Queryable, followUp: FollowUp): Promise<void> {
  await tx`
    INSERT INTO balance_follow_ups (key, account_id, kind, facts)
    VALUES (${followUp.key}, ${followUp.accountId}, ${followUp.kind}, ${tx.json(followUp.facts as never)})
    ON CONFLICT (key) DO NOTHING`;
}

/** Which unstarted follow-ups to read: one account's, or the oldest of some accounts or of all. */
export type FollowUpScope = { accountId: string } | { limit: number; accountIds?: string[] };

/** Follow-ups whose work was not started yet, oldest first. */
export async function findUnstartedFollowUps(sql: Queryable, scope: FollowUpScope): Promise<FollowUp[]> {
  const accounts =
    'accountId' in scope
      ? sql`AND account_id = ${scope.accountId}`
      : scope.accountIds
        ? sql`AND account_id = ANY (${scope.accountIds})`
        : sql``;
  const rows = await sql<Array<Pick<FollowUp, 'kind' | 'facts'> & { key: string; account_id: string }>>`
    SELECT key, account_id, kind, facts FROM balance_follow_ups
    WHERE started_at IS NULL ${accounts}
    ORDER BY created_at LIMIT ${'limit' in scope ? scope.limit : 100}`;
  return rows.map(
    (row) => ({ key: row.key, accountId: row.account_id, kind: row.kind, facts: row.facts }) as FollowUp,
  );
}

/** Marks follow-ups whose work was started (or found started already). */
export async function markFollowUpsStarted(sql: Sql, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`
    UPDATE balance_follow_ups SET started_at = now()
    WHERE key = ANY (${keys}) AND started_at IS NULL`;
}

/**
 * How many low-balance notices the account was ever sent: a threshold saved again after it was
 * deleted counts on from there, so that each notice keeps a number (and keys) of its own.
 */
export async function countLowBalanceNotices(tx: Queryable, accountId: string): Promise<number> {
  const [row] = await tx<{ n: string }[]>`
    SELECT count(*) AS n FROM balance_follow_ups
    WHERE account_id = ${accountId} AND kind = 'low_balance_notice'`;
  return toSafeInteger(row?.n ?? '0', 'notices');
}
