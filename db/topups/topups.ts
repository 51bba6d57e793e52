import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
import { emailKeys } from '../../email/templates';
import { toSafeInteger } from '../../domain/integers';
import { renderTopupFailedEmail } from '../../email/topup-templates';
import type { PaymentIntentSummary } from '../../stripe/payment-intent';
import {
  awaitsStripesAnswer,
  chargeOutcomeUnknown,
  decideTopupGrant,
  disablesAutoTopup,
  OUTCOME_UNKNOWN_FAILURE_CODES,
  topupGrantReason,
  topupReceiptTitle,
  UNCOUNTED_FAILURE_CODES,
  type TopupStatus,
} from '../../domain/topup-rules';
import type { Queryable, Sql } from '../client';
import { createGrant, findEntryByKey, lockAccountBalance } from '../../credits/index';
import { outboundEventId, queueOutboundEvent } from '../outbound-webhooks/events';
import { enqueueAccountEmail, isEmailQueued, isEmailQueuedBy, queueReceipt } from '../email/outbox';
import { recordPurchase } from '../purchases/purchases';

/**
 * Automatic top-ups: the per-account settings, and each attempt from its opening (by the credit
 * movement that crossed the threshold, credits/balance-watch.ts) to its grant or failure (by the
 * top-up workflow).
 */

export interface TopupSettingsInput {
  enabled: boolean;
  threshold: number;
  packId: string | null;
  credits: number;
  amountCents: number;
  currency: string;
  monthlyCapCents: number;
  maxConsecutiveFailures: number;
}

export interface TopupSettings extends TopupSettingsInput {
  accountId: string;
  consecutiveFailures: number;
  disabledReason: string | null;
  disabledAt: Date | null;
  lastSkippedReason: string | null;
  /**
   * What the month's top-ups in the settings' currency took or may take, in its minor units: all
   * but the failed ones, except failures whose charge may have gone through (see the cap rule in
   * domain/topup-rules.ts).
   */
  usedThisMonthCents: number;
}

export type { TopupStatus };

export interface Topup {
  id: string;
  accountId: string;
  packId: string | null;
  credits: number;
  amountCents: number;
  currency: string;
  status: TopupStatus;
  paymentIntentId: string | null;
  failureCode: string | null;
  failureMessage: string | null;
  recoveryUrl: string | null;
  ledgerEntryId: number | null;
  createdAt: Date;
}

interface TopupRow {
  id: string;
  account_id: string;
  pack_id: string | null;
  credits: string;
  amount_cents: string;
  currency: string;
  status: TopupStatus;
  payment_intent_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  recovery_url: string | null;
  ledger_entry_id: string | null;
  created_at: Date;
}

const TOPUP_COLUMNS =
  'id, account_id, pack_id, credits, amount_cents, currency, status, payment_intent_id, failure_code, ' +
  'failure_message, recovery_url, ledger_entry_id, created_at';

const toTopup = (row: TopupRow): Topup => ({
  id: row.id,
  accountId: row.account_id,
  packId: row.pack_id,
  credits: toSafeInteger(row.credits, 'credits'),
  amountCents: toSafeInteger(row.amount_cents, 'amount'),
  currency: row.currency,
  status: row.status,
  paymentIntentId: row.payment_intent_id,
  failureCode: row.failure_code,
  failureMessage: row.failure_message,
  recoveryUrl: row.recovery_url,
  ledgerEntryId: row.ledger_entry_id === null ? null : toSafeInteger(row.ledger_entry_id, 'ledger id'),
  createdAt: row.created_at,
});

interface SettingsRow {
  account_id: string;
  enabled: boolean;
  threshold: string;
  pack_id: string | null;
  credits: string;
  amount_cents: string;
  currency: string;
  monthly_cap_cents: string;
  max_consecutive_failures: number;
  consecutive_failures: number;
  disabled_reason: string | null;
  disabled_at: Date | null;
  last_skipped_reason: string | null;
  used_cents: string;
}

const toSettings = (row: SettingsRow): TopupSettings => ({
  accountId: row.account_id,
  enabled: row.enabled,
  threshold: toSafeInteger(row.threshold, 'threshold'),
  packId: row.pack_id,
  credits: toSafeInteger(row.credits, 'credits'),
  amountCents: toSafeInteger(row.amount_cents, 'amount'),
  currency: row.currency,
  monthlyCapCents: toSafeInteger(row.monthly_cap_cents, 'cap'),
  maxConsecutiveFailures: row.max_consecutive_failures,
  consecutiveFailures: row.consecutive_failures,
  disabledReason: row.disabled_reason,
  disabledAt: row.disabled_at,
  lastSkippedReason: row.last_skipped_reason,
  usedThisMonthCents: toSafeInteger(row.used_cents, 'used'),
});

export async function findTopupSettings(sql: Queryable, accountId: string): Promise<TopupSettings | null> {
  const [row] = await sql<SettingsRow[]>`
    SELECT t.*,
           (SELECT COALESCE(SUM(amount_cents), 0) FROM topups u
            WHERE u.account_id = t.account_id AND u.currency = t.currency
              AND (u.status <> 'failed' OR u.failure_code = ANY (${[...OUTCOME_UNKNOWN_FAILURE_CODES]}))
              AND u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date)::text AS used_cents
    FROM topup_settings t WHERE t.account_id = ${accountId}`;
  return row ? toSettings(row) : null;
}

/**
 * Saves the settings under the account's lock. Saving them (re-enabling included) clears the
 * failure count and arms the threshold: the next movement that leaves the balance below it
 * opens a top-up, even if the balance is below it already.
 */
export async function saveTopupSettings(
  sql: Sql,
  accountId: string,
  input: TopupSettingsInput,
): Promise<TopupSettings> {
  await sql.begin(async (tx) => {
    await lockAccountBalance(tx, accountId);
    await tx`
      INSERT INTO topup_settings (account_id, enabled, threshold, pack_id, credits, amount_cents, currency,
                                  monthly_cap_cents, max_consecutive_failures, armed)
      VALUES (${accountId}, ${input.enabled}, ${input.threshold}, ${input.packId}, ${input.credits},
              ${input.amountCents}, ${input.currency}, ${input.monthlyCapCents},
              ${input.maxConsecutiveFailures}, true)
      ON CONFLICT (account_id) DO UPDATE SET
        enabled = EXCLUDED.enabled, threshold = EXCLUDED.threshold, pack_id = EXCLUDED.pack_id,
        credits = EXCLUDED.credits, amount_cents = EXCLUDED.amount_cents, currency = EXCLUDED.currency,
        monthly_cap_cents = EXCLUDED.monthly_cap_cents,
        max_consecutive_failures = EXCLUDED.max_consecutive_failures, armed = true,
        consecutive_failures = 0, disabled_reason = NULL, disabled_at = NULL,
        last_skipped_reason = NULL, updated_at = now()`;
  });
  const saved = await findTopupSettings(sql, accountId);
  if (!saved) throw new Error(`top-up settings of ${accountId} vanished after saving`);
  return saved;
}

export async function listTopups(sql: Queryable, accountId: string, limit: number): Promise<Topup[]> {
  const rows = await sql<TopupRow[]>`
    SELECT ${sql.unsafe(TOPUP_COLUMNS)} FROM topups WHERE account_id = ${accountId}
    ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
  return rows.map(toTopup);
}

export async function findTopup(sql: Queryable, topupId: string): Promise<Topup | null> {
  const [row] = await sql<TopupRow[]>`SELECT ${sql.unsafe(TOPUP_COLUMNS)} FROM topups WHERE id = ${topupId}`;
  return row ? toTopup(row) : null;
}

/** The account's Stripe customer, created once: a customer already remembered is kept. */
export async function rememberStripeCustomer(
  sql: Sql,
  accountId: string,
  customerId: string,
): Promise<string> {
  const [row] = await sql<{ stripe_customer_id: string }[]>`
    UPDATE accounts SET stripe_customer_id = COALESCE(stripe_customer_id, ${customerId})
    WHERE id = ${accountId} RETURNING stripe_customer_id`;
  return row?.stripe_customer_id ?? customerId;
}

export async function findStripeCustomer(sql: Queryable, accountId: string): Promise<string | null> {
  const [row] = await sql<{ stripe_customer_id: string | null }[]>`
    SELECT stripe_customer_id FROM accounts WHERE id = ${accountId}`;
  return row?.stripe_customer_id ?? null;
}

/** Marks a pending top-up as being charged; answers it as it stands either way. */
export async function beginTopup(sql: Sql, topupId: string): Promise<Topup | null> {
  await sql`UPDATE topups SET status = 'charging', updated_at = now() WHERE id = ${topupId} AND status = 'pending'`;
  return findTopup(sql, topupId);
}

/** The payment intent a top-up created; the first one recorded stays. */
export async function recordTopupPaymentIntent(
  sql: Sql,
  topupId: string,
  paymentIntentId: string,
): Promise<void> {
  await sql`
    UPDATE topups SET payment_intent_id = COALESCE(payment_intent_id, ${paymentIntentId}), updated_at = now()
    WHERE id = ${topupId}`;
}

export type TopupGrantOutcome =
  | {
      outcome: 'granted';
      ledgerEntryId: number;
      balanceAfter: number;
      receiptKey: string | null;
      /** Whether this call granted it (false: granted before, answered as it was). */
      applied: boolean;
    }
  | { outcome: 'refused'; code: string; reason: string }
  | { outcome: 'failed'; code: string; message: string }
  | { outcome: 'settled'; status: TopupStatus; ledgerEntryId: number | null };

/**
 * The grant of a paid top-up, all or nothing, through the purchase path: the payment checked
 * against what was asked, a paid grant keyed by the top-up ID, the purchase (kind `topup`, found
 * by refunds through its payment intent) completed, the receipt and `topup.succeeded` queued,
 * the failure count cleared. A top-up already settled answers as it was settled, except a
 * failed one whose payment turns out to have succeeded (Stripe answered late, or the run gave
 * up waiting): money taken becomes credits, and that failure no longer counts.
 */
export async function grantTopup(
  sql: Sql,
  request: { topupId: string; workflowId: string; payment: PaymentIntentSummary; livemode: boolean },
): Promise<TopupGrantOutcome> {
  return sql.begin(async (tx): Promise<TopupGrantOutcome> => {
    const [row] = await tx<TopupRow[]>`
      SELECT ${tx.unsafe(TOPUP_COLUMNS)} FROM topups WHERE id = ${request.topupId} FOR UPDATE`;
    if (!row) throw new Error(`top-up ${request.topupId} does not exist`);
    const topup = toTopup(row);
    const decision = decideTopupGrant(topup, request.payment, request.livemode);
    switch (decision.action) {
      case 'answer_granted':
        return answerGranted(tx, topup);
      case 'answer_settled':
        return { outcome: 'settled', status: topup.status, ledgerEntryId: topup.ledgerEntryId };
      case 'keep_failed':
        return { outcome: 'settled', status: topup.status, ledgerEntryId: null };
      case 'fail':
        return { outcome: 'failed', code: decision.code, message: decision.message };
      case 'refuse':
        await tx`
          UPDATE topups SET status = 'refused', failure_code = ${decision.code},
                 failure_message = ${decision.reason}, updated_at = now()
          WHERE id = ${topup.id}`;
        return { outcome: 'refused', code: decision.code, reason: decision.reason };
      case 'grant':
        return grantPaidTopup(tx, topup, request, decision.afterFailure);
    }
  });
}

/** A top-up granted before, answered as its grant answered. */
async function answerGranted(tx: Queryable, topup: Topup): Promise<TopupGrantOutcome> {
  const receiptKey = emailKeys.receipt(topup.id);
  const entry = await findEntryByKey(tx, topup.id);
  return {
    outcome: 'granted',
    ledgerEntryId: topup.ledgerEntryId ?? 0,
    balanceAfter: entry?.balanceAfter ?? 0,
    receiptKey: (await isEmailQueued(tx, receiptKey)) ? receiptKey : null,
    applied: false,
  };
}

/**
 * After a top-up turns out paid: now only the counted failures after it are in a row. Automatic
 * top-up turned off by the count stays off until the settings are saved.
 */
async function recountFailuresAfter(tx: Queryable, topup: Topup): Promise<void> {
  await tx`
    UPDATE topup_settings SET consecutive_failures = LEAST(consecutive_failures,
      (SELECT count(*) FROM topups n JOIN topups t ON t.id = ${topup.id}
       WHERE n.account_id = t.account_id AND n.status = 'failed'
         AND n.failure_code <> ALL (${[...UNCOUNTED_FAILURE_CODES]})
         AND n.created_at > t.created_at)::int), updated_at = now()
    WHERE account_id = ${topup.accountId}`;
}

/** Whether the account opened a top-up after this one (its threshold was armed again since). */
async function toppedUpSince(tx: Queryable, topup: Topup): Promise<boolean> {
  // Compared in the database: a JS Date would drop the microseconds of the row's own time.
  const [newer] = await tx`
    SELECT 1 FROM topups n JOIN topups t ON t.id = ${topup.id}
    WHERE n.account_id = t.account_id AND n.created_at > t.created_at LIMIT 1`;
  return newer !== undefined;
}

/**
 * The grant itself: a paid grant keyed by the top-up ID, the top-up succeeded, the settings
 * (failure count, armed), the purchase, the receipt and `topup.succeeded`, in one transaction.
 */
async function grantPaidTopup(
  tx: Queryable,
  topup: Topup,
  request: { workflowId: string; payment: PaymentIntentSummary },
  afterFailure: boolean,
): Promise<TopupGrantOutcome> {
  // Disarmed by its crossing until now, as an open one is: the grant itself opens no top-up.
  if (afterFailure) await tx`UPDATE topup_settings SET armed = false WHERE account_id = ${topup.accountId}`;
  const created = await createGrant(tx, {
    accountId: topup.accountId,
    source: 'purchase',
    category: 'paid',
    priority: DEFAULT_PRIORITY.paid,
    expiresAt: null,
    amount: topup.credits,
    businessKey: topup.id,
    kind: 'purchase',
    reason: topupGrantReason(topup.packId),
  });
  const { entry } = created;
  await tx`
    UPDATE topups SET status = 'succeeded', payment_intent_id = COALESCE(payment_intent_id, ${request.payment.id}),
           ledger_entry_id = ${entry.id}, failure_code = NULL, failure_message = NULL, updated_at = now()
    WHERE id = ${topup.id}`;
  if (afterFailure) {
    await recountFailuresAfter(tx, topup);
    await tx`UPDATE topup_settings SET armed = enabled WHERE account_id = ${topup.accountId}`;
  } else {
    // Armed again even if this grant left the balance below the threshold: the next debit buys more.
    await tx`
      UPDATE topup_settings SET consecutive_failures = 0, armed = true, updated_at = now()
      WHERE account_id = ${topup.accountId}`;
  }
  await recordPurchase(tx, {
    id: topup.id,
    kind: 'topup',
    accountId: topup.accountId,
    packId: topup.packId,
    credits: topup.credits,
    amountCents: topup.amountCents,
    currency: topup.currency,
    livemode: request.payment.livemode,
    status: 'completed',
    reasonCode: null,
    reason: 'automatic top-up',
    workflowId: request.workflowId,
    ledgerEntryId: entry.id,
    grantId: created.grant.id,
    paymentIntentId: request.payment.id,
  });
  const receiptKey = await queueReceipt(tx, {
    accountId: topup.accountId,
    packName: topupReceiptTitle(topup.credits),
    credits: topup.credits,
    amountCents: topup.amountCents,
    currency: topup.currency,
    balanceAfter: entry.balanceAfter,
    reference: topup.id,
    workflowId: request.workflowId,
  });
  await queueOutboundEvent(tx, {
    id: outboundEventId('topup.succeeded', topup.id),
    type: 'topup.succeeded',
    accountId: topup.accountId,
    data: {
      topup_id: topup.id,
      credits: topup.credits,
      amount_cents: topup.amountCents,
      currency: topup.currency,
      payment_intent: request.payment.id,
      balance_after: entry.balanceAfter,
    },
  });
  return {
    outcome: 'granted',
    ledgerEntryId: entry.id,
    balanceAfter: entry.balanceAfter,
    receiptKey,
    applied: true,
  };
}

export interface TopupFailureOutcome {
  /** The failure notice to deliver; null when the top-up was settled otherwise meanwhile. */
  emailKey: string | null;
  autoTopupDisabled: boolean;
}

/**
 * A failed attempt, all at once: the top-up marked failed (it no longer counts against the cap),
 * the failure counted, automatic top-up turned off once the count reaches the limit (else armed
 * again, so that the next debit tries again), the customer's email with the link to pay
 * on-session and `topup.failed` queued. A failure whose charge may still have gone through
 * (`chargeOutcomeUnknown`) is recorded and told, without a link, a count or re-arming.
 *
 * A top-up failed because Stripe could not say what became of its charge, then reported
 * declined, is recorded, counted and told as any decline (an email and a `topup.failed` of their
 * own, the first having said it was not finished); if the account opened a top-up since, this
 * one is no longer part of a run of failures in a row and neither counts nor re-arms. A top-up
 * already failed otherwise answers as it failed.
 */
export async function failTopup(
  sql: Sql,
  request: TopupFailure & { recoveryUrl: string | null },
): Promise<TopupFailureOutcome> {
  return sql.begin(async (tx) => failLockedTopup(tx, await lockTopup(tx, request.topupId), request));
}

interface TopupFailure {
  topupId: string;
  workflowId: string;
  code: string;
  message: string;
}

/** The top-up, its row locked for the rest of the transaction. */
async function lockTopup(tx: Queryable, topupId: string): Promise<Topup> {
  const [row] = await tx<TopupRow[]>`
    SELECT ${tx.unsafe(TOPUP_COLUMNS)} FROM topups WHERE id = ${topupId} FOR UPDATE`;
  if (!row) throw new Error(`top-up ${topupId} does not exist`);
  return toTopup(row);
}

async function failLockedTopup(
  tx: Queryable,
  topup: Topup,
  request: TopupFailure & { recoveryUrl: string | null },
): Promise<TopupFailureOutcome> {
  const lateDecline =
    topup.status === 'failed' &&
    awaitsStripesAnswer(topup.failureCode) &&
    !chargeOutcomeUnknown(request.code);
  if (topup.status === 'failed' && !lateDecline) {
    const [settings] = await tx<{ enabled: boolean }[]>`
      SELECT enabled FROM topup_settings WHERE account_id = ${topup.accountId}`;
    // The email of its last news: the decline heard late, else the failure as first recorded.
    const declined = emailKeys.topupDeclinedLate(topup.id);
    const emailKey = (await isEmailQueued(tx, declined)) ? declined : emailKeys.topupFailed(topup.id);
    return { emailKey, autoTopupDisabled: settings?.enabled === false };
  }
  // Granted or refused meanwhile: that outcome stands, and nothing is sent about a failure.
  if (topup.status !== 'pending' && topup.status !== 'charging' && !lateDecline)
    return { emailKey: null, autoTopupDisabled: false };
  const emailKey = lateDecline ? emailKeys.topupDeclinedLate(topup.id) : emailKeys.topupFailed(topup.id);
  const unknown = chargeOutcomeUnknown(request.code);
  // Failures in a row: a late decline after a newer top-up is no longer one of them.
  const counts = !unknown && !(lateDecline && (await toppedUpSince(tx, topup)));
  const recoveryUrl = unknown ? null : request.recoveryUrl;
  await tx`
    UPDATE topups SET status = 'failed', failure_code = ${request.code},
           failure_message = ${request.message.slice(0, 1000)}, recovery_url = ${recoveryUrl},
           updated_at = now()
    WHERE id = ${topup.id}`;
  const [counted] = await tx<{ consecutive_failures: number; max_consecutive_failures: number }[]>`
    UPDATE topup_settings SET consecutive_failures = consecutive_failures + ${counts ? 1 : 0},
           updated_at = now()
    WHERE account_id = ${topup.accountId}
    RETURNING consecutive_failures, max_consecutive_failures`;
  const failures = counted?.consecutive_failures ?? 1;
  const max = counted?.max_consecutive_failures ?? 1;
  const disabled = counts && disablesAutoTopup(failures, max);
  if (counts) {
    await tx`
      UPDATE topup_settings
      SET ${
        disabled
          ? tx`enabled = false, armed = false, disabled_at = now(),
               disabled_reason = ${`turned off after ${failures} failed top-ups in a row (last: ${request.code})`}`
          : tx`armed = true`
      }
      WHERE account_id = ${topup.accountId}`;
  }
  await enqueueAccountEmail(tx, {
    key: emailKey,
    accountId: topup.accountId,
    workflowId: request.workflowId,
    ...renderTopupFailedEmail({
      accountId: topup.accountId,
      topupId: topup.id,
      credits: topup.credits,
      amountCents: topup.amountCents,
      currency: topup.currency,
      failureCode: request.code,
      recoveryUrl,
      disabled,
      maxConsecutiveFailures: max,
    }),
  });
  await queueOutboundEvent(tx, {
    // A decline heard late is news of its own: the first event said the outcome was unknown.
    id: outboundEventId('topup.failed', lateDecline ? `${topup.id}:declined-late` : topup.id),
    type: 'topup.failed',
    accountId: topup.accountId,
    data: {
      topup_id: topup.id,
      credits: topup.credits,
      amount_cents: topup.amountCents,
      currency: topup.currency,
      payment_intent: topup.paymentIntentId,
      failure_code: request.code,
      recovery_url: recoveryUrl,
      consecutive_failures: failures,
      auto_topup_disabled: disabled,
    },
  });
  return { emailKey, autoTopupDisabled: disabled };
}

/** What a failure that is the grant's, not the card's, is recorded as: the grant is owed. */
const GRANT_OWED: (typeof OUTCOME_UNKNOWN_FAILURE_CODES)[number] = 'grant_failed';

/**
 * A grant the database still refuses after its activity's retries while the money was taken:
 * the top-up is recorded failed as `grant_failed`, its grant owed. Its run keeps retrying the
 * grant (which turns it into a success), and the owed-grants gauge shows it to operators until
 * then. An open top-up is recorded as any failure whose charge went through: the customer told
 * it is not finished (no link to pay again), nothing counted, nothing re-armed. One recorded
 * failed before (a success heard late) is marked owed without a word more, and a failure of it
 * that counted toward turning automatic top-up off no longer does: the card paid. A top-up
 * granted or refused meanwhile answers as it stands.
 */
export async function recordTopupGrantOwed(
  sql: Sql,
  request: Omit<TopupFailure, 'code'>,
): Promise<TopupFailureOutcome> {
  return sql.begin(async (tx) => {
    const topup = await lockTopup(tx, request.topupId);
    if (topup.status !== 'failed') {
      return failLockedTopup(tx, topup, { ...request, code: GRANT_OWED, recoveryUrl: null });
    }
    if (topup.failureCode !== GRANT_OWED) {
      await tx`
        UPDATE topups SET failure_code = ${GRANT_OWED}, failure_message = ${request.message.slice(0, 1000)},
               updated_at = now()
        WHERE id = ${topup.id}`;
      if (!UNCOUNTED_FAILURE_CODES.includes(topup.failureCode ?? '')) await recountFailuresAfter(tx, topup);
    }
    // A retry answers as its first attempt did: the notice, if this run queued it.
    const notice = emailKeys.topupFailed(topup.id);
    const [settings] = await tx<{ enabled: boolean }[]>`
      SELECT enabled FROM topup_settings WHERE account_id = ${topup.accountId}`;
    return {
      emailKey: (await isEmailQueuedBy(tx, notice, request.workflowId)) ? notice : null,
      autoTopupDisabled: settings?.enabled === false,
    };
  });
}

/**
 * The safety net of the maintenance sweep: a top-up still open long after any run could have
 * ended (its run was terminated, or failed on a bug) would block the account's top-ups for good
 * and count against its cap. Recorded failed, without counting it against the customer or
 * emailing; a success event heard later still grants it.
 */
export async function failAbandonedTopups(sql: Sql, olderThanDays: number): Promise<string[]> {
  // One transaction: a top-up recorded failed here re-arms its account in the same commit.
  return sql.begin(async (tx) => {
    const rows = await tx<{ id: string; account_id: string }[]>`
      UPDATE topups SET status = 'failed', failure_code = 'abandoned',
             failure_message = 'the top-up was still open after its run must have ended', updated_at = now()
      WHERE status IN ('pending', 'charging') AND updated_at < now() - make_interval(days => ${olderThanDays})
      RETURNING id, account_id`;
    const accounts = [...new Set(rows.map((row) => row.account_id))];
    if (accounts.length > 0) {
      // As after any failure: the next movement below the threshold tries again.
      await tx`UPDATE topup_settings SET armed = true, updated_at = now()
               WHERE account_id = ANY (${accounts}) AND enabled`;
    }
    return rows.map((row) => row.id);
  });
}
