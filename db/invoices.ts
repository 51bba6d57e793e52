import { emailKeys, renderDunningEmail } from '../domain/billing-emails';
import { toSafeInteger } from '../domain/integers';
import { renderPurchaseReceipt } from '../domain/receipt';
import type { InvoiceSummary } from '../domain/stripe-billing-objects';
import type { Queryable, Sql } from './client';
import { AccountNotFoundError, applyCreditMovement } from './ledger';
import { enqueueEmail } from './outbox';
import { expireEndedPeriods } from './period-expiry';
import { receiptKeyFor } from './purchase-grants';
import { recordPurchase, type PurchaseRecord } from './purchases';

/** One billing period's credits, for one paid subscription invoice. */
export interface InvoiceGrant {
  invoiceId: string;
  subscriptionId: string;
  accountId: string;
  planId: string | null;
  planName: string;
  credits: number;
  /** The plan's setting when the period was granted: without rollover it expires at renewal. */
  rollover: boolean;
  periodStart: number;
  periodEnd: number;
  amountCents: number;
  currency: string;
  livemode: boolean;
  paymentIntentId: string | null;
  workflowId: string;
  approvedBy?: string | null;
}

export interface InvoiceGrantOutcome {
  ledgerEntryId: number;
  /** False when this invoice was already credited: nothing changed. */
  applied: boolean;
  /** Unused credits of earlier periods that expired with this renewal. */
  expiredCredits: number;
  /** The receipt to deliver; null when nothing was granted now, or the period had already ended. */
  receiptKey: string | null;
}

async function lockBalance(tx: Queryable, accountId: string): Promise<void> {
  const [locked] = await tx`SELECT 1 FROM credit_balances WHERE account_id = ${accountId} FOR UPDATE`;
  if (!locked) throw new AccountNotFoundError(accountId);
}

/**
 * The grant of a paid subscription invoice, all or nothing, keyed by the invoice ID: expire the
 * unused credits of ended periods (plans without rollover), grant this period's credits, record
 * the invoice as a purchase and its period, queue the receipt. The account's balance row is
 * locked first, as every credit movement does, so renewals and spending serialize.
 */
export async function grantInvoiceCredits(sql: Sql, grant: InvoiceGrant): Promise<InvoiceGrantOutcome> {
  return sql.begin(async (tx) => {
    await lockBalance(tx, grant.accountId);
    const [done] = await tx<
      { id: string }[]
    >`SELECT id FROM credit_ledger WHERE business_key = ${grant.invoiceId}`;
    if (done) {
      return { ledgerEntryId: toSafeInteger(done.id), applied: false, expiredCredits: 0, receiptKey: null };
    }
    const [latest] = await tx<{ start: string | null }[]>`
      SELECT max(period_start) AS start FROM subscription_periods WHERE subscription_id = ${grant.subscriptionId}`;
    const currentPeriodStart = Math.max(grant.periodStart, toSafeInteger(latest?.start ?? 0));
    const scope = { subscriptionId: grant.subscriptionId, currentPeriodStart };
    let expiredCredits = await expireEndedPeriods(tx, scope);

    const period = `${isoDate(grant.periodStart)} to ${isoDate(grant.periodEnd)}`;
    const { entry } = await applyCreditMovement(tx, {
      accountId: grant.accountId,
      delta: grant.credits,
      kind: 'subscription',
      businessKey: grant.invoiceId,
      reason: grant.approvedBy
        ? `approved by ${grant.approvedBy}`
        : `plan ${grant.planId ?? 'unknown'}, period ${period}`,
    });
    await recordPurchase(tx, {
      ...invoicePurchase(grant, grant.accountId, grant.workflowId),
      credits: grant.credits,
      status: 'completed',
      reason: grant.approvedBy ? `approved by ${grant.approvedBy}` : null,
      ledgerEntryId: entry.id,
    });
    await tx`
      INSERT INTO subscription_periods (invoice_id, subscription_id, account_id, plan_id, credits, rollover,
                                        period_start, period_end, ledger_entry_id)
      VALUES (${grant.invoiceId}, ${grant.subscriptionId}, ${grant.accountId}, ${grant.planId}, ${grant.credits},
              ${grant.rollover}, ${grant.periodStart}, ${grant.periodEnd}, ${entry.id})`;
    // A period delivered after a later one has started is already over.
    const stale = grant.periodStart < currentPeriodStart;
    if (stale) expiredCredits += await expireEndedPeriods(tx, scope);
    const receiptKey = stale ? null : await queueReceipt(tx, grant, entry.balanceAfter);
    return { ledgerEntryId: entry.id, applied: true, expiredCredits, receiptKey };
  });
}

async function queueReceipt(tx: Queryable, grant: InvoiceGrant, balanceAfter: number): Promise<string> {
  const [account] = await tx<{ email: string }[]>`SELECT email FROM accounts WHERE id = ${grant.accountId}`;
  const key = receiptKeyFor(grant.invoiceId);
  const receipt = renderPurchaseReceipt({
    accountId: grant.accountId,
    packName: grant.planName,
    credits: grant.credits,
    amountCents: grant.amountCents,
    currency: grant.currency,
    balanceAfter,
    reference: grant.invoiceId,
  });
  await enqueueEmail(tx, { key, accountId: grant.accountId, to: account?.email ?? '', ...receipt });
  return key;
}

/** The purchases row of an invoice: every field but its status and outcome. */
function invoicePurchase(
  invoice: {
    invoiceId: string;
    amountCents: number;
    currency: string;
    livemode: boolean;
    paymentIntentId: string | null;
  },
  accountId: string | null,
  workflowId: string,
): Omit<PurchaseRecord, 'status' | 'credits'> {
  return {
    id: invoice.invoiceId,
    kind: 'invoice',
    accountId,
    packId: null,
    amountCents: invoice.amountCents,
    currency: invoice.currency,
    livemode: invoice.livemode,
    workflowId,
    paymentIntentId: invoice.paymentIntentId,
  };
}

const summaryFacts = (invoice: InvoiceSummary, amountCents: number) => ({
  invoiceId: invoice.id,
  amountCents,
  currency: invoice.currency,
  livemode: invoice.livemode,
  paymentIntentId: invoice.paymentIntentId,
});

/** Records an invoice that grants nothing (yet): held for review, rejected, or never reviewed. */
export async function recordInvoiceOutcome(
  sql: Sql,
  input: {
    invoice: InvoiceSummary;
    accountId: string | null;
    workflowId: string;
    status: 'held_for_review' | 'rejected' | 'review_expired';
    reasonCode: string | null;
    reason: string;
  },
): Promise<void> {
  await recordPurchase(sql, {
    ...invoicePurchase(
      summaryFacts(input.invoice, input.invoice.amountPaid),
      input.accountId,
      input.workflowId,
    ),
    credits: null,
    status: input.status,
    reasonCode: input.reasonCode,
    reason: input.reason,
  });
}

/**
 * A failed invoice payment: the invoice is marked, and the dunning email queued once per
 * invoice (Stripe sends an event per failed attempt). An invoice that was paid meanwhile is
 * left alone and nobody is told it failed.
 */
export async function recordInvoicePaymentFailure(
  sql: Sql,
  input: { invoice: InvoiceSummary; accountId: string; planName: string | null; workflowId: string },
): Promise<{ outcome: 'already_paid' } | { outcome: 'recorded'; emailKey: string }> {
  const { invoice } = input;
  return sql.begin(async (tx) => {
    const status = await recordPurchase(tx, {
      ...invoicePurchase(summaryFacts(invoice, invoice.amountDue), input.accountId, input.workflowId),
      credits: null,
      status: 'payment_failed',
      reasonCode: 'payment_failed',
      reason: `payment attempt ${invoice.attemptCount ?? '?'} failed`,
    });
    if (status === 'completed') return { outcome: 'already_paid' as const };
    const [account] = await tx<{ email: string }[]>`SELECT email FROM accounts WHERE id = ${input.accountId}`;
    const emailKey = emailKeys.dunning(invoice.id);
    const email = renderDunningEmail({
      planName: input.planName,
      amountDueCents: invoice.amountDue,
      currency: invoice.currency,
      nextPaymentAttempt: invoice.nextPaymentAttempt,
      hostedInvoiceUrl: invoice.hostedInvoiceUrl,
      reference: invoice.id,
    });
    await enqueueEmail(tx, { key: emailKey, accountId: input.accountId, to: account?.email ?? '', ...email });
    return { outcome: 'recorded' as const, emailKey };
  });
}

function isoDate(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(0, 10);
}
