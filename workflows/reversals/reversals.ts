import type { Duration } from '@temporalio/common';
import { proxyActivities } from '@temporalio/workflow';
import type { createReversalActivities } from '../../activities/reversals/reversals';
import {
  reversalStatusQuery,
  type DisputeWorkflowInput,
  type RefundWorkflowInput,
  type ReversalOutcome,
  type ReversalWorkflowResult,
  type ReversalWorkflowStatus,
} from './contract';
import { databaseActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';
import { recheckWhile } from '../shared/recheck';

type ReversalActivities = ReturnType<typeof createReversalActivities>;

const reversals = proxyActivities<ReversalActivities>(databaseActivityOptions);

/**
 * `charge.refunded`: takes back the purchase's credits in proportion to the amount refunded so
 * far (`amount_refunded` is cumulative), moving only what this total adds to what is already
 * revoked. Ledger key: the charge and that total. The balance may go negative.
 */
export async function refundWorkflow(input: RefundWorkflowInput): Promise<ReversalWorkflowResult> {
  const { charge } = input;
  return runReversal(charge.id, charge.paymentIntentId, input.purchaseTimeout, () =>
    reversals.applyRefund({ charge }),
  );
}

/**
 * `charge.dispute.created` revokes all of the purchase's credits (key: the dispute ID);
 * `charge.dispute.closed` restores them when the dispute is won (its own key) and leaves them
 * revoked when it is lost. Refunds and disputes of one purchase never take more than it granted.
 */
export async function disputeWorkflow(input: DisputeWorkflowInput): Promise<ReversalWorkflowResult> {
  const { dispute, phase } = input;
  return runReversal(dispute.id, dispute.paymentIntentId, input.purchaseTimeout, () =>
    reversals.applyDispute({ dispute, phase }),
  );
}

const awaitsPurchase = (outcome: ReversalOutcome) =>
  outcome.outcome === 'purchase_unknown' || outcome.outcome === 'purchase_pending';

/** Applies the event, waiting for the purchase to be granted first if it is not yet. */
async function runReversal(
  subject: string,
  paymentIntentId: string | null,
  purchaseTimeout: Duration,
  apply: () => Promise<ReversalOutcome>,
): Promise<ReversalWorkflowResult> {
  const status: ReversalWorkflowStatus = {
    stage: 'applying',
    subject,
    paymentIntentId,
    purchaseId: null,
    accountId: null,
    delta: null,
    revokedCredits: null,
    ledgerEntryId: null,
    reason: null,
  };
  const { enter, account } = trackStage(status, reversalStatusQuery);

  let outcome = await apply();
  if (paymentIntentId !== null && awaitsPurchase(outcome)) {
    enter('awaiting_purchase');
    outcome = await recheckWhile(outcome, awaitsPurchase, apply, purchaseTimeout);
  }

  switch (outcome.outcome) {
    case 'purchase_unknown':
    case 'purchase_pending':
      status.reason = 'no granted purchase was paid with this payment intent';
      enter('no_purchase');
      return status;
    case 'not_granted':
      status.purchaseId = outcome.purchaseId;
      account(outcome.accountId);
      status.reason = `the purchase ended ${outcome.status}, without credits`;
      enter('not_granted');
      return status;
    case 'currency_mismatch':
    case 'dispute_conflict':
      status.purchaseId = outcome.purchaseId;
      account(outcome.accountId);
      status.reason =
        outcome.outcome === 'currency_mismatch'
          ? 'the event is in another currency than the purchase'
          : 'the purchase already has another dispute';
      enter(outcome.outcome);
      return status;
    default:
      status.purchaseId = outcome.purchaseId;
      account(outcome.accountId);
      status.delta = outcome.delta;
      status.revokedCredits = outcome.revokedCredits;
      status.ledgerEntryId = outcome.ledgerEntryId;
      enter(outcome.outcome);
      return status;
  }
}
