import { randomUUID } from 'node:crypto';
import type { Sql } from '../../db/client';
import { createGrant } from '../../credits/grants';
import {
  charge,
  checkoutSession,
  invoice,
  stripeEvent,
  stripeId,
  subscription,
  type InvoiceOptions,
  type StripeEvent,
} from '../../stripe/fixtures/index';
import { invoiceStatusQuery } from '../../workflows/subscriptions/contract';
import type { MaintenanceInput, MaintenanceResult } from '../../workflows/maintenance/contract';
import type { Harness } from './harness';
import { waitUntil } from './wait';

/** Fixtures and reads for the subscription, refund and dispute tests. */

export const DAY = 24 * 3600;

export const PLANS = {
  /** 1000 credits a month, unused ones expire at the period's end. */
  basic: { priceId: 'price_basic_monthly', credits: 1000, amount: 1900, rollover: false },
  /** 5000 credits a month, unused ones roll over. */
  pro: { priceId: 'price_pro_monthly', credits: 5000, amount: 7900, rollover: true },
} as const;

export const PACKS = {
  starter: { credits: 100, amount: 900 },
  growth: { credits: 550, amount: 4500 },
  scale: { credits: 1200, amount: 9000 },
} as const;

/** A new subscription of `plan` for a new account, and the Stripe events that start it. */
export async function newSubscription(
  h: Harness,
  plan: keyof typeof PLANS = 'basic',
  options: Pick<InvoiceOptions, 'includePayments'> & {
    /** How many 30-day periods ago the subscription started (its first periods are over). */
    startedPeriodsAgo?: number;
    /** Instead: the first period ends this many seconds from now. */
    firstPeriodEndsIn?: number;
  } = {},
) {
  const { startedPeriodsAgo = 0, firstPeriodEndsIn, ...firstInvoiceOptions } = options;
  const account = await h.newAccount();
  const terms = PLANS[plan];
  const subscriptionId = stripeId('sub');
  const customerId = stripeId('cus');
  const nowSeconds = Math.floor(Date.now() / 1000);
  const periodStart =
    firstPeriodEndsIn === undefined
      ? nowSeconds - startedPeriodsAgo * 30 * DAY
      : nowSeconds + firstPeriodEndsIn - 30 * DAY;
  const session = checkoutSession({
    accountId: account.id,
    mode: 'subscription',
    subscriptionId,
    customerId,
    amountTotal: terms.amount,
  });
  const firstPaymentIntentId = stripeId('pi');
  const firstInvoice = invoice({
    customerId,
    subscriptionId,
    priceId: terms.priceId,
    amount: terms.amount,
    periodStart,
    billingReason: 'subscription_create',
    paymentIntentId: firstPaymentIntentId,
    ...firstInvoiceOptions,
  });
  const sub = subscription({
    id: subscriptionId,
    customerId,
    priceId: terms.priceId,
    unitAmount: terms.amount,
    periodStart,
  });
  /** The invoice of the period `months` after the first one. */
  const renewal = (months: number, options: InvoiceOptions = {}) =>
    invoice({
      customerId,
      subscriptionId,
      priceId: terms.priceId,
      amount: terms.amount,
      periodStart: periodStart + months * 30 * DAY,
      billingReason: 'subscription_cycle',
      ...options,
    });
  return {
    account,
    terms,
    subscriptionId,
    customerId,
    periodStart,
    session,
    subscription: sub,
    firstInvoice,
    /** The payment intent that paid the first invoice, whether or not its events say so. */
    firstPaymentIntentId,
    renewal,
    /** The four events Stripe sends when the subscription starts. */
    startEvents: (): StripeEvent[] => [
      stripeEvent('checkout.session.completed', session),
      stripeEvent('customer.subscription.created', sub),
      stripeEvent('invoice.paid', firstInvoice),
      stripeEvent('invoice.payment_succeeded', firstInvoice),
    ],
  };
}

/**
 * A paid pack purchase for a new account, granted (unless `deliver` is false: the caller sends
 * its checkout event); and a builder of its charge's refund events.
 */
export async function grantedPurchase(
  h: Harness,
  pack: keyof typeof PACKS = 'growth',
  { deliver = true } = {},
) {
  const account = await h.newAccount();
  const terms = PACKS[pack];
  const session = checkoutSession({ accountId: account.id, packId: pack, amountTotal: terms.amount });
  if (deliver) await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
  const paymentIntentId = session.payment_intent as string;
  const chargeId = stripeId('ch');
  return {
    account,
    terms,
    session,
    paymentIntentId,
    chargeId,
    /** charge.refunded reporting `amountRefunded` refunded in total so far. */
    refunded: (amountRefunded: number) =>
      stripeEvent(
        'charge.refunded',
        charge({ id: chargeId, paymentIntentId, amount: terms.amount, amountRefunded }),
      ),
  };
}

/** What a finished workflow returned: its status, whose `stage` says how it ended. */
export type SettledWorkflow = { stage: string } & Record<string, unknown>;

/**
 * Delivers an event as Stripe does: a 503 (Temporal did not accept the start in time, on a busy
 * machine) is delivered again, a few times, as Stripe retries it; any other answer is final.
 */
async function deliverAsStripe(h: Harness, event: StripeEvent) {
  for (let attempt = 1; ; attempt += 1) {
    const answer = await h.deliver(event);
    if (answer.status !== 503 || attempt === 5) return answer;
  }
}

/** Delivers every event, answering 2xx, and waits for every workflow they started. */
export async function deliverAndSettle(h: Harness, events: StripeEvent[]): Promise<SettledWorkflow[]> {
  const answers = await Promise.all(events.map((event) => deliverAsStripe(h, event)));
  const failed = answers.filter((answer) => answer.status !== 200);
  if (failed.length > 0) throw new Error(`deliveries failed: ${JSON.stringify(failed)}`);
  const started = [...new Set(answers.map((answer) => answer.body.workflowId as string | null))];
  return Promise.all(
    started
      .filter((id): id is string => id !== null)
      .map((id) => h.temporal.workflow.getHandle(id).result() as Promise<SettledWorkflow>),
  );
}

export async function ledgerOf(h: Harness, accountId: string) {
  const rows = await h.sql<{ business_key: string; delta: string; kind: string; reason: string | null }[]>`
    SELECT business_key, delta, kind, reason FROM credit_ledger WHERE account_id = ${accountId} ORDER BY id`;
  return rows.map((row) => ({
    key: row.business_key,
    delta: Number(row.delta),
    kind: row.kind,
    reason: row.reason,
  }));
}

/**
 * The balance, checked before it is returned against the sum of the ledger (invariant 2) and
 * against what the grants hold (Σ remaining − Σ owed), and every grant checked to account for
 * its whole amount (invariant 10).
 */
export async function checkedBalance(h: Harness, accountId: string): Promise<number> {
  const [row] = await h.sql<{ balance: string; sum: string; grants: string; unbalanced: string }[]>`
    SELECT b.balance,
           COALESCE((SELECT SUM(delta) FROM credit_ledger WHERE account_id = b.account_id), 0) AS sum,
           COALESCE((SELECT SUM(remaining) - SUM(owed) FROM credit_grants WHERE account_id = b.account_id), 0) AS grants,
           (SELECT count(*) FROM credit_grants WHERE account_id = b.account_id
              AND amount <> remaining + drawn + expired + voided + revoked_remaining) AS unbalanced
    FROM credit_balances b WHERE b.account_id = ${accountId}`;
  if (!row) throw new Error(`no balance row for ${accountId}`);
  if (row.balance !== row.sum)
    throw new Error(`balance ${row.balance} differs from the ledger sum ${row.sum}`);
  if (row.balance !== row.grants)
    throw new Error(`balance ${row.balance} differs from what the grants hold, ${row.grants}`);
  if (row.unbalanced !== '0') throw new Error(`${row.unbalanced} grants do not account for their amount`);
  return Number(row.balance);
}

/**
 * Runs the maintenance workflow once on the harness's worker: expiries, due holds, outbox sweep,
 * and the balance follow-ups of `followUpsOf` and expiry notices of `expiryNoticesOf` only. Test
 * files share the database but not their workers and mail servers: a run that started every
 * file's follow-ups or notices would start another file's on this file's worker, where that file
 * never sees them.
 */
export async function runMaintenance(
  h: Harness,
  options: { followUpsOf?: string[]; expiryNoticesOf?: string[] } = {},
) {
  const input: MaintenanceInput = {
    followUpAccounts: options.followUpsOf ?? [],
    expiryNoticeAccounts: options.expiryNoticesOf ?? [],
  };
  return h.temporal.workflow.execute('maintenanceWorkflow', {
    taskQueue: h.config.temporal.taskQueue,
    workflowId: `maintenance-test-${randomUUID()}`,
    args: [input],
  }) as Promise<MaintenanceResult>;
}

/** The grants of an account, oldest first, as stored. */
export async function grantsOf(h: Harness, accountId: string) {
  const rows = await h.sql<
    {
      id: string;
      source: string;
      amount: string;
      remaining: string;
      expired: string;
      owed: string;
      closed_reason: string | null;
      business_key: string;
    }[]
  >`
    SELECT id, source, amount, remaining, expired, owed, closed_reason, business_key
    FROM credit_grants WHERE account_id = ${accountId} ORDER BY id`;
  return rows.map((row) => ({
    id: Number(row.id),
    source: row.source,
    key: row.business_key,
    amount: Number(row.amount),
    remaining: Number(row.remaining),
    expired: Number(row.expired),
    owed: Number(row.owed),
    closed: row.closed_reason,
  }));
}

/** A grant made straight in the database (as the API's grant route would), for grant-model tests. */
export function grantDirectly(
  sql: Sql,
  accountId: string,
  grant: { key: string; amount: number; category?: 'paid' | 'promotional'; expiresAt?: Date | null },
) {
  const category = grant.category ?? 'paid';
  return sql.begin((tx) =>
    createGrant(tx, {
      accountId,
      source: category === 'paid' ? 'manual' : 'promotional',
      category,
      priority: category === 'paid' ? 100 : 10,
      expiresAt: grant.expiresAt ?? null,
      amount: grant.amount,
      businessKey: `test:${accountId}:${grant.key}`,
      kind: 'grant',
      reason: grant.key,
    }),
  );
}

/** A new account holding `credits` in one paid grant (none when 0); its ID is added to `touched`. */
export async function fundedAccount(h: Harness, credits: number, touched: string[]): Promise<string> {
  const account = await h.newAccount();
  touched.push(account.id);
  if (credits > 0) await grantDirectly(h.sql, account.id, { key: 'fund', amount: credits });
  return account.id;
}

/**
 * A subscription whose first invoice bills a price no plan has: the invoice's workflow, once it
 * waits held for review, with the invoice and its event.
 */
export async function heldInvoice(h: Harness) {
  const fixture = await newSubscription(h, 'basic');
  await deliverAndSettle(h, [fixture.startEvents()[0] as StripeEvent]);
  const unknown = fixture.renewal(0, {
    priceId: 'price_legacy_plan',
    billingReason: 'subscription_create',
  });
  const event = stripeEvent('invoice.paid', unknown);
  await h.deliver(event);
  const handle = h.temporal.workflow.getHandle(event.id);
  await waitUntil(async () => (await handle.query(invoiceStatusQuery)).stage === 'held_for_review', {
    what: 'held invoice',
  });
  return { fixture, unknown, event, handle };
}
