import { emailKeys, renderDunningEmail } from '../../email/templates';
import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
import type { InvoiceSummary } from '../../stripe/billing-objects';
import type { Queryable, Sql } from '../client';
import { createGrant } from '../../credits/index';
import type { ReviewDecisionRecord } from '../audit/audit-log';
import { enqueueAccountEmail, queueReceipt } from '../email/outbox';
import { auditApproval, replayedGrant } from '../purchases/grants';
import { recordPurchase, type PurchaseRecord } from '../purchases/purchases';

/** One billing period's credits, for one paid subscription invoice. */
export interface InvoiceGrant {
  invoiceId: string;
  subscriptionId: string;
  accountId: string;
  planId: string | null;
  planName: string;
  credits: number;
  /** The plan's setting when the period was granted: without rollover it expires at the period's end. */
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
  /** False when another workflow credited this invoice: nothing changed here. */
  applied: boolean;
  /** The receipt to deliver; null when nothing was granted here, or the period had already ended. */
  receiptKey: string | null;
  grantId: number;
  /** The audit entry of the reviewer's decision this grant applied, when one did. */
  auditId?: number | null;
}

/**
 * The grant of a paid subscription invoice, all or nothing, keyed by the invoice ID: the
 * period's credits as a paid grant that expires at the period's end when the plan does not roll
 * them over, the invoice recorded as a purchase and its period, the receipt queued and, for a
 * reviewer's approval, its audit row. A refusal of the ledger throws (see `grantRefusalOf`).
 */
export async function grantInvoiceCredits(
  sql: Sql,
  grant: InvoiceGrant,
  review: ReviewDecisionRecord | null = null,
): Promise<InvoiceGrantOutcome> {
  return sql.begin(async (tx) => {
    const period = `${isoDate(grant.periodStart)} to ${isoDate(grant.periodEnd)}`;
    const reason = grant.approvedBy
      ? `approved by ${grant.approvedBy}`
      : `plan ${grant.planId ?? 'unknown'}, period ${period}`;
    const created = await createGrant(tx, {
      accountId: grant.accountId,
      source: 'subscription',
      category: 'paid',
      priority: DEFAULT_PRIORITY.paid,
      expiresAt: !grant.rollover && grant.periodEnd > 0 ? new Date(grant.periodEnd * 1000) : null,
      amount: grant.credits,
      businessKey: grant.invoiceId,
      kind: 'subscription',
      reason,
    });
    const { entry } = created;
    if (!created.applied) {
      const replay = await replayedGrant(tx, grant.invoiceId, grant.workflowId, entry, created.grant.id);
      const stage = replay.receiptKey === null ? 'completed' : 'sending_receipt';
      return {
        ledgerEntryId: replay.ledgerEntryId,
        applied: replay.applied,
        receiptKey: replay.receiptKey,
        grantId: replay.grantId,
        auditId: await auditApproval(tx, review, replay, { stage, granted: grant.credits }, true),
      };
    }
    await recordPurchase(tx, {
      ...invoicePurchase(grant, grant.accountId, grant.workflowId),
      credits: grant.credits,
      status: 'completed',
      reason: grant.approvedBy ? `approved by ${grant.approvedBy}` : null,
      ledgerEntryId: entry.id,
      grantId: created.grant.id,
    });
    // A period delivered after a later one has started is over: no receipt for it.
    const [later] = await tx`
      SELECT 1 FROM subscription_periods
      WHERE subscription_id = ${grant.subscriptionId} AND period_start > ${grant.periodStart} LIMIT 1`;
    await tx`
      INSERT INTO subscription_periods (invoice_id, subscription_id, account_id, plan_id, credits, rollover,
                                        period_start, period_end, ledger_entry_id)
      VALUES (${grant.invoiceId}, ${grant.subscriptionId}, ${grant.accountId}, ${grant.planId}, ${grant.credits},
              ${grant.rollover}, ${grant.periodStart}, ${grant.periodEnd}, ${entry.id})`;
    const receiptKey = later
      ? null
      : await queueReceipt(tx, {
          accountId: grant.accountId,
          packName: grant.planName,
          credits: grant.credits,
          amountCents: grant.amountCents,
          currency: grant.currency,
          balanceAfter: entry.balanceAfter,
          reference: grant.invoiceId,
          workflowId: grant.workflowId,
        });
    const outcome = { ledgerEntryId: entry.id, applied: true, receiptKey, grantId: created.grant.id };
    const stage = receiptKey === null ? 'completed' : 'sending_receipt';
    return {
      ...outcome,
      auditId: await auditApproval(tx, review, outcome, { stage, granted: grant.credits }, false),
    };
  });
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

/** What an invoice's purchase record takes from the invoice. */
type InvoiceFacts = Pick<InvoiceSummary, 'id' | 'amountPaid' | 'currency' | 'livemode' | 'paymentIntentId'>;

const summaryFacts = (invoice: InvoiceFacts, amountCents: number) => ({
  invoiceId: invoice.id,
  amountCents,
  currency: invoice.currency,
  livemode: invoice.livemode,
  paymentIntentId: invoice.paymentIntentId,
});

/** Records an invoice that grants nothing (yet): held for review, rejected, or never reviewed. */
export async function recordInvoiceOutcome(
  sql: Queryable,
  input: {
    invoice: InvoiceFacts;
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
    const emailKey = emailKeys.dunning(invoice.id);
    const email = renderDunningEmail({
      planName: input.planName,
      amountDueCents: invoice.amountDue,
      currency: invoice.currency,
      nextPaymentAttempt: invoice.nextPaymentAttempt,
      hostedInvoiceUrl: invoice.hostedInvoiceUrl,
      reference: invoice.id,
    });
    await enqueueAccountEmail(tx, {
      key: emailKey,
      accountId: input.accountId,
      workflowId: input.workflowId,
      ...email,
    });
    return { outcome: 'recorded' as const, emailKey };
  });
}

function isoDate(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().slice(0, 10);
}
