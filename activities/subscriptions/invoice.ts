import { log } from '@temporalio/activity';
import {
  grantInvoiceCredits,
  recordInvoiceOutcome,
  recordInvoicePaymentFailure,
} from '../../db/subscriptions/invoices';
import { recordReviewDecision, type ReviewDecisionRecord } from '../../db/audit/audit-log';
import { grantRefusalOf, recordRefusedApproval, type GrantRefusal } from '../../db/purchases/grants';
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
  type InvoiceHoldCode,
} from '../../domain/subscription-rules';
import { recordsFirst } from '../business-metrics';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';

export type InvoiceFailureResult =
  | { outcome: 'await_link' }
  | { outcome: 'already_paid'; accountId: string }
  | { outcome: 'recorded'; accountId: string; emailKey: string };

/** The hold a refused grant puts an invoice in, so an operator can decide on it. */
const REFUSAL_HOLDS: Record<GrantRefusal['refusal']['code'], InvoiceHoldCode> = {
  balance_out_of_range: 'balance_out_of_range',
  // The linked account is gone: as if no checkout had linked the subscription.
  account_not_found: 'subscription_unlinked',
};

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
      /**
       * The reviewer's decision behind `approval`: when the check does not lead to a grant (held
       * again, granted meanwhile), the attempt is audited here, as not applied.
       */
      review?: ReviewDecisionRecord | null;
    }): Promise<InvoiceCheckResult> {
      const { invoice, workflowId, review = null } = input;
      /** An approval that leads to no grant, audited as not applied (with what held it back). */
      const notApplied = async (
        result: Exclude<InvoiceCheckResult, { outcome: 'grant' }>,
        stage: string,
        reasonCode: string,
        reason: string,
      ): Promise<InvoiceCheckResult> => {
        if (review === null) return result;
        const effect = { applied: false, stage, granted: null, ledgerEntryId: null, reasonCode, reason };
        return { ...result, auditId: await recordReviewDecision(sql, review, effect) };
      };
      const existing = await findPurchase(sql, invoice.id);
      if (existing?.status === 'completed') {
        const result = { outcome: 'already_granted' as const, ledgerEntryId: existing.ledgerEntryId };
        return notApplied(
          result,
          'already_granted',
          'already_granted',
          'another event for this invoice granted it',
        );
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
      if (check.kind === 'no_grant') {
        return notApplied(
          { outcome: 'no_grant', reason: check.reason },
          'not_granted',
          'no_grant',
          check.reason,
        );
      }
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
      // An approval held again leaves the held record as it was; only its attempt is audited.
      if (review === null) {
        await recordInvoiceOutcome(sql, {
          invoice,
          accountId,
          workflowId,
          status: 'held_for_review',
          reasonCode: held.code,
          reason: held.reason,
        });
      }
      log.warn('invoice held for review', { invoiceId: invoice.id, reasonCode: held.code });
      const result = { outcome: 'hold' as const, code: held.code, reason: held.reason, accountId };
      return notApplied(result, 'held_for_review', held.code, held.reason);
    },

    /**
     * The grant, for a paid invoice or a reviewer's approval (`review`: its audit row commits
     * with the grant). A grant the ledger refuses (the balance would pass 2^53 − 1) is answered,
     * not thrown: an approval's attempt is audited and the invoice stays held; an invoice that
     * passed its checks is held for review with the reason, so money taken stays in view.
     */
    async grantInvoice(
      grant: InvoiceGrant,
      review: ReviewDecisionRecord | null = null,
    ): Promise<InvoiceGrantOutcome | GrantRefusal> {
      const first = metrics ? await recordsFirst(sql, grant.invoiceId) : false;
      let outcome: InvoiceGrantOutcome;
      try {
        outcome = await grantInvoiceCredits(sql, grant, review);
      } catch (error) {
        const refusal = grantRefusalOf(error);
        if (refusal === null) throw error;
        log.warn('grant refused by the ledger', { invoiceId: grant.invoiceId, code: refusal.code });
        if (review !== null) return recordRefusedApproval(sql, review, refusal);
        const reasonCode = REFUSAL_HOLDS[refusal.code];
        await recordInvoiceOutcome(sql, {
          invoice: {
            id: grant.invoiceId,
            amountPaid: grant.amountCents,
            currency: grant.currency,
            livemode: grant.livemode,
            paymentIntentId: grant.paymentIntentId,
          },
          accountId: refusal.code === 'account_not_found' ? null : grant.accountId,
          workflowId: grant.workflowId,
          status: 'held_for_review',
          reasonCode,
          reason: INVOICE_HOLD_REASONS[reasonCode],
        });
        return { refusal, auditId: null };
      }
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

    /**
     * Records an invoice that closes without credits (rejected, or never reviewed); a rejection's
     * audit row (`review`) in the same transaction. Answers the audit entry, if any.
     */
    async closeInvoice(input: {
      invoice: InvoiceSummary;
      accountId: string | null;
      workflowId: string;
      status: 'rejected' | 'review_expired';
      reasonCode: string | null;
      reason: string;
      review?: ReviewDecisionRecord | null;
    }): Promise<{ auditId: number | null }> {
      const { review = null, ...outcome } = input;
      return sql.begin(async (tx) => {
        await recordInvoiceOutcome(tx, outcome);
        if (review === null) return { auditId: null };
        const effect = {
          applied: true,
          stage: input.status,
          granted: null,
          ledgerEntryId: null,
          reasonCode: null,
          reason: input.reason,
        };
        return { auditId: await recordReviewDecision(tx, review, effect) };
      });
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
