import { emailKeys, renderSubscriptionEndedEmail } from '../../email/templates';
import type { SubscriptionSummary } from '../../stripe/billing-objects';
import { FINAL_SUBSCRIPTION_STATUSES, isNewerSubscriptionState } from '../../domain/subscription-rules';
import { toSafeInteger } from '../../domain/integers';
import type { Queryable, Sql } from '../client';
import { expireGrantsNow } from '../../credits/index';
import { enqueueAccountEmail } from '../email/outbox';

interface SubscriptionRow {
  id: string;
  account_id: string | null;
  status: string | null;
  plan_id: string | null;
  state_event_created: string | null;
}

/** Creates the row if this is the first event about the subscription, then locks it. */
async function lockSubscription(tx: Queryable, id: string): Promise<SubscriptionRow> {
  await tx`INSERT INTO subscriptions (id) VALUES (${id}) ON CONFLICT (id) DO NOTHING`;
  const [row] = await tx<SubscriptionRow[]>`
    SELECT id, account_id, status, plan_id, state_event_created FROM subscriptions WHERE id = ${id} FOR UPDATE`;
  if (!row) throw new Error(`subscription ${id} vanished inside its own transaction`);
  return row;
}

/**
 * The "subscription ended" notice, queued once the subscription is both ended and linked to an
 * account, by whichever of the two facts arrives second. The outbox key makes it once.
 */
async function queueEndedNotice(tx: Queryable, row: SubscriptionRow): Promise<string | null> {
  if (!row.account_id || !row.status || !FINAL_SUBSCRIPTION_STATUSES.has(row.status)) return null;
  const [plan] = await tx<{ name: string }[]>`SELECT name FROM subscription_plans WHERE id = ${row.plan_id}`;
  const key = emailKeys.subscriptionEnded(row.id);
  const email = renderSubscriptionEndedEmail({
    planName: plan?.name ?? null,
    accountId: row.account_id,
    reference: row.id,
  });
  await enqueueAccountEmail(tx, { key, accountId: row.account_id, ...email });
  return key;
}

/**
 * When a subscription ends and its plan says so, the unused credits of its periods expire now:
 * nothing is drawn from them from this moment, and the maintenance sweep writes the expiry.
 */
async function endPeriodGrants(tx: Queryable, row: SubscriptionRow): Promise<void> {
  if (!row.account_id) return;
  // Each period's grant is keyed by the invoice that paid for it.
  const periods = await tx<{ invoice_id: string }[]>`
    SELECT invoice_id FROM subscription_periods
    WHERE subscription_id = ${row.id}
      AND EXISTS (SELECT 1 FROM subscription_plans WHERE id = ${row.plan_id} AND expire_on_cancel)`;
  await expireGrantsNow(
    tx,
    row.account_id,
    periods.map((period) => period.invoice_id),
  );
}

export type LinkOutcome =
  | { outcome: 'linked' | 'already_linked'; accountId: string; noticeKey: string | null }
  | { outcome: 'conflict'; accountId: string; linkedTo: string };

/**
 * Links a subscription to the account its checkout session named. The first link is final: a
 * later claim for another account changes nothing and is reported.
 */
export async function linkSubscription(
  sql: Sql,
  link: { subscriptionId: string; accountId: string; customerId: string | null; checkoutSessionId: string },
): Promise<LinkOutcome> {
  return sql.begin(async (tx) => {
    const row = await lockSubscription(tx, link.subscriptionId);
    if (row.account_id !== null && row.account_id !== link.accountId) {
      return { outcome: 'conflict' as const, accountId: link.accountId, linkedTo: row.account_id };
    }
    if (row.account_id === link.accountId) {
      return { outcome: 'already_linked' as const, accountId: link.accountId, noticeKey: null };
    }
    await tx`
      UPDATE subscriptions SET account_id = ${link.accountId}, linked_by = ${link.checkoutSessionId},
             customer_id = COALESCE(customer_id, ${link.customerId}), updated_at = now()
      WHERE id = ${link.subscriptionId}`;
    const noticeKey = await queueEndedNotice(tx, { ...row, account_id: link.accountId });
    return { outcome: 'linked' as const, accountId: link.accountId, noticeKey };
  });
}

export interface StateOutcome {
  /** False when the stored state is newer: nothing changed. */
  applied: boolean;
  status: string | null;
  planId: string | null;
  accountId: string | null;
  noticeKey: string | null;
}

/** Stores the state a customer.subscription.* event carries, unless a newer one is stored. */
export async function applySubscriptionState(
  sql: Sql,
  input: { subscription: SubscriptionSummary; planId: string | null; eventId: string; eventCreated: number },
): Promise<StateOutcome> {
  const { subscription } = input;
  return sql.begin(async (tx) => {
    const row = await lockSubscription(tx, subscription.id);
    const stored = {
      status: row.status,
      eventCreated: row.state_event_created === null ? null : toSafeInteger(row.state_event_created),
    };
    if (
      !isNewerSubscriptionState(stored, { status: subscription.status, eventCreated: input.eventCreated })
    ) {
      return {
        applied: false,
        status: row.status,
        planId: row.plan_id,
        accountId: row.account_id,
        noticeKey: null,
      };
    }
    const periodEnd =
      subscription.currentPeriodEnd === null ? null : new Date(subscription.currentPeriodEnd * 1000);
    await tx`
      UPDATE subscriptions SET
        status = ${subscription.status}, plan_id = ${input.planId}, price_id = ${subscription.priceId},
        customer_id = COALESCE(customer_id, ${subscription.customerId}),
        cancel_at_period_end = ${subscription.cancelAtPeriodEnd}, current_period_end = ${periodEnd},
        state_event_id = ${input.eventId}, state_event_created = ${input.eventCreated}, updated_at = now()
      WHERE id = ${subscription.id}`;
    const updated = { ...row, status: subscription.status, plan_id: input.planId };
    if (FINAL_SUBSCRIPTION_STATUSES.has(subscription.status)) await endPeriodGrants(tx, updated);
    const noticeKey = await queueEndedNotice(tx, updated);
    return {
      applied: true,
      status: subscription.status,
      planId: input.planId,
      accountId: row.account_id,
      noticeKey,
    };
  });
}

/** The account a subscription is linked to, if any yet. */
export async function findSubscriptionAccount(
  sql: Queryable,
  subscriptionId: string,
): Promise<string | null> {
  const [row] = await sql<{ account_id: string | null }[]>`
    SELECT account_id FROM subscriptions WHERE id = ${subscriptionId}`;
  return row?.account_id ?? null;
}
