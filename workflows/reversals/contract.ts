import type { Duration } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import type { ChargeSummary, DisputeSummary } from '../../stripe/charge-objects';
import type { ReversalOutcome } from '../../db/reversals/reversals';

// Defined where its data lives; named here too, as the workflow's activities answer it.
export type { ReversalOutcome };

/**
 * What the API and the worker agree on for the two families that take credits back: refunds
 * (`charge.refunded`) and disputes (`charge.dispute.created` / `.closed`). Both find the
 * purchase through its payment intent and share one status shape.
 */

export const REFUND_WORKFLOW_TYPE = 'refundWorkflow';
export const DISPUTE_WORKFLOW_TYPE = 'disputeWorkflow';

interface ReversalInputBase {
  eventId: string;
  eventType: string;
  /** How long to wait for the purchase the payment paid for to be granted (events arrive in any order). */
  purchaseTimeout: Duration;
}

export interface RefundWorkflowInput extends ReversalInputBase {
  charge: ChargeSummary;
}

export interface DisputeWorkflowInput extends ReversalInputBase {
  dispute: DisputeSummary;
  phase: 'opened' | 'closed';
}

/** Where the run is. Also the value of the `BillingStatus` search attribute. */
export type ReversalStage =
  | 'applying'
  | 'awaiting_purchase'
  | 'applied'
  | 'no_change'
  | 'already_applied'
  | 'no_purchase'
  | 'not_granted'
  | 'currency_mismatch'
  | 'dispute_conflict';

/** Answer of the `status` query. */
export interface ReversalWorkflowStatus {
  stage: ReversalStage;
  /** The charge (refunds) or dispute (disputes) the event is about. */
  subject: string;
  paymentIntentId: string | null;
  purchaseId: string | null;
  accountId: string | null;
  /** Credits this event moved: negative revokes, positive restores. */
  delta: number | null;
  /** Credits of the purchase revoked after this event. */
  revokedCredits: number | null;
  ledgerEntryId: number | null;
  reason: string | null;
}

export type ReversalWorkflowResult = ReversalWorkflowStatus;

export const reversalStatusQuery = defineQuery<ReversalWorkflowStatus>('status');
