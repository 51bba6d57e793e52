import { log } from '@temporalio/activity';
import {
  grantInvoiceCredits,
  recordInvoiceOutcome,
  recordInvoicePaymentFailure,
} from '../../db/subscriptions/invoices';
import type {
  InvoiceCheckResult,
  InvoiceGrant,
  InvoiceGrantOutcome,
} from '../../workflows/subscriptions/contract';
import { findPlanByPrice } from '../../db/catalog/plans';
import { findPurchase } from '../../db/purchases/purchases';
import { findSubscriptionAccount } from '../../db/subscriptions/subscriptions';
import type { InvoiceSummary } from '../../stripe/billing-objects';
import {
  checkInvoicePayment,
  INVOICE_HOLD_REASONS,
  type InvoiceApproval,
} from '../../domain/subscription-rules';
import { recordsFirst } from '../business-metrics';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';

export type InvoiceFailureResult =
  | { outcome: 'await_link' }
  | { outcome: 'already_paid'; accountId: string }
  | { outcome: 'recorded'; accountId: string; emailKey: string };

/** What the invoice activities use: the database, the Stripe mode to expect, and the counters. */
export type InvoiceActivityDependencies = Pick<ActivityDependencies, 'sql' | 'metrics'> & {
  config: Pick<ActivityConfig, 'stripe'>;
};

/** Activities of the invoice workflow. */
export function createInvoiceActivities<D extends InvoiceActivityDependencies>({ sql, config, metrics }: D) {
  return {
    /**
     * Decides what a paid invoice grants: the catalog plan of the price it bills, to the account
     * its subscription is linked to. Anything held is recorded so the API shows it.
     */
    async checkInvoice(input: {
      invoice: InvoiceSummary;
      workflowId: string;
      /** The wait for the subscription's link is over: an unlinked invoice is held. */
      linkTimedOut?: boolean;
      approval?: InvoiceApproval | null;
    }): Promise<InvoiceCheckResult> {
      const { invoice, workflowId } = input;
      const existing = await findPurchase(sql, invoice.id);
      if (existing?.status === 'completed') {
        return { outcome: 'already_granted', ledgerEntryId: existing.ledgerEntryId };
      }
      const accountId = invoice.subscriptionId
        ? await findSubscriptionAccount(sql, invoice.subscriptionId)
        : null;
      const plan = invoice.priceId ? await findPlanByPrice(sql, invoice.priceId) : null;
      const check = checkInvoicePayment({
        invoice,
        plan,
        accountId,
        expectedLivemode: config.stripe.livemode,
        approval: input.approval ?? null,
      });
      if (check.kind === 'no_grant') return { outcome: 'no_grant', reason: check.reason };
      if (check.kind === 'await_link' && !input.linkTimedOut) return { outcome: 'await_link' };
      if (check.kind === 'grant' && invoice.subscriptionId) {
        return {
          outcome: 'grant',
          grant: {
            invoiceId: invoice.id,
            subscriptionId: invoice.subscriptionId,
            accountId: check.accountId,
            planId: check.plan?.id ?? null,
            planName: check.plan?.name ?? 'Subscription credits',
            credits: check.credits,
            rollover: check.plan?.rollover ?? true,
            periodStart: invoice.periodStart ?? 0,
            periodEnd: invoice.periodEnd ?? 0,
            amountCents: invoice.amountPaid,
            currency: invoice.currency,
            livemode: invoice.livemode,
            paymentIntentId: invoice.paymentIntentId,
            workflowId,
            approvedBy: input.approval?.reviewer ?? null,
          },
        };
      }
      const held =
        check.kind === 'hold'
          ? check
          : { code: 'subscription_unlinked' as const, reason: INVOICE_HOLD_REASONS.subscription_unlinked };
      await recordInvoiceOutcome(sql, {
        invoice,
        accountId,
        workflowId,
        status: 'held_for_review',
        reasonCode: held.code,
        reason: held.reason,
      });
      log.warn('invoice held for review', { invoiceId: invoice.id, reasonCode: held.code });
      return { outcome: 'hold', code: held.code, reason: held.reason, accountId };
    },

    async grantInvoice(grant: InvoiceGrant): Promise<InvoiceGrantOutcome> {
      const first = metrics ? await recordsFirst(sql, grant.invoiceId) : false;
      const outcome = await grantInvoiceCredits(sql, grant);
      if (first && outcome.applied) metrics?.creditsGranted('subscription', grant.credits);
      log.info(outcome.applied ? 'period credits granted' : 'invoice already credited', {
        invoiceId: grant.invoiceId,
        accountId: grant.accountId,
        credits: grant.credits,
        grantId: outcome.grantId,
        ledgerEntryId: outcome.ledgerEntryId,
      });
      return outcome;
    },

    /** Records an invoice that closes without credits (rejected, or never reviewed). */
    async closeInvoice(input: {
      invoice: InvoiceSummary;
      accountId: string | null;
      workflowId: string;
      status: 'rejected' | 'review_expired';
      reasonCode: string | null;
      reason: string;
    }): Promise<void> {
      await recordInvoiceOutcome(sql, input);
    },

    async recordInvoiceFailure(input: {
      invoice: InvoiceSummary;
      workflowId: string;
    }): Promise<InvoiceFailureResult> {
      const { invoice } = input;
      const accountId = invoice.subscriptionId
        ? await findSubscriptionAccount(sql, invoice.subscriptionId)
        : null;
      if (!accountId) return { outcome: 'await_link' };
      const plan = invoice.priceId ? await findPlanByPrice(sql, invoice.priceId) : null;
      const result = await recordInvoicePaymentFailure(sql, {
        invoice,
        accountId,
        planName: plan?.name ?? null,
        workflowId: input.workflowId,
      });
      log.info('invoice payment failed', { invoiceId: invoice.id, accountId, outcome: result.outcome });
      return { ...result, accountId };
    },
  };
}
