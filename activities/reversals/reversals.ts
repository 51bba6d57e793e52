import { activityInfo, log } from '@temporalio/activity';
import { attachInvoicePaymentIntent } from '../../db/purchases/purchases';
import { applyPurchaseReversal, type ReversalEvent } from '../../db/reversals/reversals';
import type { ReversalOutcome } from '../../workflows/reversals/contract';
import { withDispute, withRefundTotal, type DisputeChange } from '../../domain/reversal-rules';
import type { ChargeSummary, DisputeSummary } from '../../stripe/charge-objects';
import { purchaseGrantSource, recordsFirst } from '../business-metrics';
import type { ActivityDependencies } from '../dependencies';

/**
 * The ledger key of a refund. A Charge no longer embeds its refunds, so each `charge.refunded`
 * is known by the cumulative total it reports: the refund that brought the charge to that total.
 */
export const refundKey = (chargeId: string, amountRefunded: number) => `refund:${chargeId}:${amountRefunded}`;

/** Ledger keys of a dispute: the revocation when it opens, and its own key for the outcome. */
export const disputeKey = (disputeId: string, change: DisputeChange) =>
  change.phase === 'opened' ? `dispute:${disputeId}` : `dispute:${disputeId}:closed`;

/** What the reversal activities use: the database, Stripe's invoice payments, and the counters. */
export type ReversalActivityDependencies = Pick<ActivityDependencies, 'sql' | 'invoicePayments' | 'metrics'>;

/** Activities of the refund and dispute workflows. */
export function createReversalActivities<D extends ReversalActivityDependencies>({
  sql,
  invoicePayments,
  metrics,
}: D) {
  async function apply(event: Omit<ReversalEvent, 'paymentIntentId'>, paymentIntentId: string | null) {
    if (!paymentIntentId) return { outcome: 'purchase_unknown' } as const;
    const workflowId = activityInfo().workflowExecution?.workflowId ?? activityInfo().activityId;
    const first = metrics ? await recordsFirst(sql, event.businessKey) : false;
    let outcome = await applyPurchaseReversal(sql, { ...event, paymentIntentId }, workflowId);
    if (outcome.outcome === 'purchase_unknown' && (await linkInvoicePayment(paymentIntentId))) {
      outcome = await applyPurchaseReversal(sql, { ...event, paymentIntentId }, workflowId);
    }
    log.info('reversal', { businessKey: event.businessKey, paymentIntentId, ...outcome });
    if (metrics && first && outcome.outcome === 'applied' && outcome.delta !== 0) {
      const source = await purchaseGrantSource(sql, outcome.purchaseId);
      if (outcome.delta < 0) {
        metrics.creditsRevoked(source, event.kind === 'refund' ? 'refund' : 'dispute', -outcome.delta);
      } else {
        metrics.creditsRestored(source, outcome.delta);
      }
    }
    return outcome;
  }

  /**
   * A payment intent no purchase knows may have paid a subscription invoice whose event did not
   * name it: ask Stripe, and note it on that invoice's purchase. Stripe being unreachable is
   * "not known yet": the workflow checks again later, as for a purchase not granted yet.
   */
  async function linkInvoicePayment(paymentIntentId: string): Promise<boolean> {
    if (!invoicePayments) return false;
    let invoiceId: string | null;
    try {
      invoiceId = await invoicePayments(paymentIntentId);
    } catch (error) {
      log.warn('could not ask Stripe which invoice a payment intent paid', {
        paymentIntentId,
        error: error instanceof Error ? error.message : String(error),
      });
      return false;
    }
    if (invoiceId) await attachInvoicePaymentIntent(sql, invoiceId, paymentIntentId);
    return invoiceId !== null;
  }

  return {
    async applyRefund(input: { charge: ChargeSummary }): Promise<ReversalOutcome> {
      const { charge } = input;
      return apply(
        {
          currency: charge.currency,
          businessKey: refundKey(charge.id, charge.amountRefunded),
          kind: 'refund',
          reason: `refund of charge ${charge.id}, ${charge.amountRefunded} of ${charge.amount} refunded`,
          update: (facts) => ({ facts: withRefundTotal(facts, charge.amountRefunded) }),
        },
        charge.paymentIntentId,
      );
    },

    async applyDispute(input: {
      dispute: DisputeSummary;
      phase: 'opened' | 'closed';
    }): Promise<ReversalOutcome> {
      const { dispute } = input;
      const change: DisputeChange =
        input.phase === 'opened' ? { phase: 'opened' } : { phase: 'closed', status: dispute.status };
      return apply(
        {
          currency: dispute.currency,
          businessKey: disputeKey(dispute.id, change),
          kind: input.phase === 'opened' ? 'dispute' : `dispute_${dispute.status}`,
          reason: `dispute ${dispute.id} ${input.phase === 'opened' ? `opened (${dispute.reason ?? 'no reason'})` : `closed ${dispute.status}`}`,
          update: (facts) => withDispute(facts, dispute.id, change),
        },
        dispute.paymentIntentId,
      );
    },
  };
}
