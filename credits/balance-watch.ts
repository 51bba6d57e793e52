import { emailKeys } from '../email/templates';
import { toSafeInteger } from '../domain/integers';
import { renderLowBalanceEmail } from '../email/topup-templates';
import {
  LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
  TOPUP_WORKFLOW_TYPE,
  topupWorkflowId,
  type LowBalanceNoticeInput,
  type TopupWorkflowInput,
} from '../workflows/topups/contract';
import type { Queryable, Sql } from '../db/client';
import { outboundEventId, queueOutboundEvent } from '../db/outbound-webhooks/events';
import { enqueueAccountEmail } from '../db/email/outbox';

/**
 * The balance watch: what a credit movement sets off when it takes an account's available
 * balance (balance − held) across a threshold. It runs inside the movement's transaction, under
 * the account's lock, so that whatever number of movements race, each crossing is seen by exactly
 * one of them; the work it asks for (a notice, a top-up) is recorded in that same transaction and
 * started after it commits (see balance_follow_ups).
 */

/** The month (UTC) a top-up counts against, as its first day. */
const CAP_MONTH = "date_trunc('month', now() AT TIME ZONE 'UTC')::date";

/**
 * Called by every credit movement once the balance has moved (credits/ledger.ts). Flips the armed
 * state of the account's low-balance and top-up thresholds when the movement crossed them, and
 * on a downward crossing queues the notice or the top-up. One statement when nothing is set.
 */
export async function watchBalance(tx: Queryable, accountId: string): Promise<void> {
  const flips = await tx<
    { kind: 'low' | 'topup'; armed: boolean; threshold: string; available: string; notices: string }[]
  >`
    WITH b AS (SELECT balance - held AS available FROM credit_balances WHERE account_id = ${accountId}),
    low AS (
      UPDATE low_balance_settings s
      SET armed = NOT s.armed,
          notices = s.notices + CASE WHEN s.armed THEN 1 ELSE 0 END,
          last_notice_at = CASE WHEN s.armed THEN now() ELSE s.last_notice_at END,
          updated_at = now()
      FROM b
      WHERE s.account_id = ${accountId} AND s.armed <> (b.available >= s.threshold)
      RETURNING s.armed, s.threshold, s.notices, b.available
    ),
    top AS (
      UPDATE topup_settings t SET armed = NOT t.armed, updated_at = now()
      FROM b
      WHERE t.account_id = ${accountId} AND t.enabled AND t.armed <> (b.available >= t.threshold)
      RETURNING t.armed, t.threshold, b.available
    )
    SELECT 'low' AS kind, armed, threshold::text, available::text, notices::text FROM low
    UNION ALL
    SELECT 'topup' AS kind, armed, threshold::text, available::text, '0' FROM top`;
  for (const flip of flips) {
    if (flip.armed) continue; // back at or above the threshold: re-armed, nothing to send
    const available = toSafeInteger(flip.available, 'available');
    const threshold = toSafeInteger(flip.threshold, 'threshold');
    if (flip.kind === 'low') {
      await queueLowBalanceNotice(tx, {
        accountId,
        notice: toSafeInteger(flip.notices, 'notices'),
        available,
        threshold,
      });
    } else {
      await openTopup(tx, accountId);
    }
  }
}

async function queueLowBalanceNotice(
  tx: Queryable,
  facts: { accountId: string; notice: number; available: number; threshold: number },
): Promise<void> {
  const key = emailKeys.lowBalance(facts.accountId, facts.notice);
  const [topup] = await tx<{ enabled: boolean }[]>`
    SELECT enabled FROM topup_settings WHERE account_id = ${facts.accountId}`;
  await enqueueAccountEmail(tx, {
    key,
    accountId: facts.accountId,
    workflowId: key,
    ...renderLowBalanceEmail({ ...facts, autoTopup: topup?.enabled ?? false }),
  });
  await queueOutboundEvent(tx, {
    id: outboundEventId('balance.low', key),
    type: 'balance.low',
    accountId: facts.accountId,
    data: { available: facts.available, threshold: facts.threshold, notice: facts.notice },
  });
  const input: LowBalanceNoticeInput = { accountId: facts.accountId, emailKey: key };
  await recordFollowUp(tx, {
    workflowId: key,
    accountId: facts.accountId,
    workflowType: LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
    input,
  });
}

/**
 * Opens a top-up of what the settings buy, unless one is open already (the partial unique index)
 * or it would take the month's top-ups past the cap. The settings row is locked by the caller's
 * UPDATE, so top-ups of one account are opened one at a time and the cap's sum is never stale.
 */
async function openTopup(tx: Queryable, accountId: string): Promise<void> {
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
      SELECT COALESCE(SUM(amount_cents), 0) AS cents FROM topups
      WHERE account_id = ${accountId} AND month = ${tx.unsafe(CAP_MONTH)} AND status <> 'failed'
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
    return;
  }
  await tx`UPDATE topup_settings SET last_skipped_reason = NULL WHERE account_id = ${accountId}`;
  const input: TopupWorkflowInput = { topupId: opened.id, accountId };
  await recordFollowUp(tx, {
    workflowId: topupWorkflowId(opened.id),
    accountId,
    workflowType: TOPUP_WORKFLOW_TYPE,
    input,
  });
}

export interface BalanceFollowUp {
  workflowId: string;
  accountId: string;
  workflowType: string;
  input: LowBalanceNoticeInput | TopupWorkflowInput;
}

async function recordFollowUp(tx: Queryable, followUp: BalanceFollowUp): Promise<void> {
  await tx`
    INSERT INTO balance_follow_ups (workflow_id, account_id, workflow_type, input)
    VALUES (${followUp.workflowId}, ${followUp.accountId}, ${followUp.workflowType},
            ${tx.json(followUp.input as never)})
    ON CONFLICT (workflow_id) DO NOTHING`;
}

/** Follow-ups whose workflow was not started yet: of one account, or (the sweep) of any. */
export async function findUnstartedFollowUps(
  sql: Queryable,
  scope: { accountId: string } | { limit: number },
): Promise<BalanceFollowUp[]> {
  const rows = await sql<
    { workflow_id: string; account_id: string; workflow_type: string; input: BalanceFollowUp['input'] }[]
  >`
    SELECT workflow_id, account_id, workflow_type, input FROM balance_follow_ups
    WHERE started_at IS NULL
      ${'accountId' in scope ? sql`AND account_id = ${scope.accountId}` : sql``}
    ORDER BY created_at LIMIT ${'limit' in scope ? scope.limit : 100}`;
  return rows.map((row) => ({
    workflowId: row.workflow_id,
    accountId: row.account_id,
    workflowType: row.workflow_type,
    input: row.input,
  }));
}

export async function markFollowUpsStarted(sql: Sql, workflowIds: string[]): Promise<void> {
  if (workflowIds.length === 0) return;
  await sql`
    UPDATE balance_follow_ups SET started_at = now()
    WHERE workflow_id = ANY (${workflowIds}) AND started_at IS NULL`;
}

/**
 * How many low-balance notices the account was ever sent: a threshold saved again after it was
 * deleted counts on from there, so that each notice keeps a number (and an email key) of its own.
 */
export async function countLowBalanceNotices(tx: Queryable, accountId: string): Promise<number> {
  const [row] = await tx<{ n: string }[]>`
    SELECT count(*) AS n FROM balance_follow_ups
    WHERE account_id = ${accountId} AND workflow_type = ${LOW_BALANCE_NOTICE_WORKFLOW_TYPE}`;
  return toSafeInteger(row?.n ?? '0', 'notices');
}
