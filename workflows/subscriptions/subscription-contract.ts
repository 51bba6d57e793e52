import { defineQuery } from '@temporalio/workflow';
import type { ReceiptState } from '../purchases/contract';
import type { SubscriptionSummary } from '../../stripe/billing-objects';

/** What the API (which starts them) and the worker agree on for subscription workflows. */

export const SUBSCRIPTION_WORKFLOW_TYPE = 'subscriptionWorkflow';

/** A subscription-mode checkout session: who the subscription belongs to. Grants nothing. */
export interface SubscriptionLink {
  subscriptionId: string;
  accountId: string | null;
  customerId: string | null;
  checkoutSessionId: string;
  livemode: boolean;
}

/** Input of one run: one Stripe event that links a subscription or reports its state. */
export type SubscriptionWorkflowInput = {
  eventId: string;
  eventType: string;
  /** `created` of the Stripe event (Unix seconds): orders the states of a subscription. */
  eventCreated: number;
  /** How long the "subscription ended" notice keeps being retried. */
  receiptDeadline: string;
} & ({ action: 'link'; link: SubscriptionLink } | { action: 'sync'; subscription: SubscriptionSummary });

/** Where the run is. Also the value of the `BillingStatus` search attribute. */
export type SubscriptionStage =
  | 'linking'
  | 'syncing'
  | 'sending_notice'
  | 'linked'
  | 'already_linked'
  | 'link_conflict'
  | 'account_unknown'
  | 'synced'
  | 'stale_state';

/** Answer of the `status` query. */
export interface SubscriptionWorkflowStatus {
  stage: SubscriptionStage;
  subscriptionId: string;
  accountId: string | null;
  /** The subscription's status and plan as stored after this event (newest state wins). */
  subscriptionStatus: string | null;
  planId: string | null;
  reason: string | null;
  notice: ReceiptState;
}

export type SubscriptionWorkflowResult = SubscriptionWorkflowStatus;

export const subscriptionStatusQuery = defineQuery<SubscriptionWorkflowStatus>('status');
