import type { SearchAttributePair } from '@temporalio/common';
import { PURCHASE_WORKFLOW_TYPE, type PurchaseWorkflowInput } from '../domain/purchase-workflow-contract';
import { AccountId, PurchaseStatus, StripeEventType } from '../domain/search-attributes';
import { summarizeCheckoutSession, type StripeEventEnvelope } from '../domain/stripe-objects';

/** What the webhook does with one verified event: start a workflow, or acknowledge and ignore. */
export type EventRoute =
  | { action: 'ignore'; reason: string }
  | {
      action: 'start';
      workflowType: string;
      args: unknown[];
      searchAttributes: SearchAttributePair[];
    };

export interface RouteSettings {
  purchaseReviewTimeout: string;
  receiptDeadline: string;
}

type Router = (event: StripeEventEnvelope, settings: RouteSettings) => EventRoute;

function startPurchase(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  const session = summarizeCheckoutSession(event.data.object);
  if (session.mode !== 'payment') {
    return { action: 'ignore', reason: `checkout session in ${session.mode} mode grants no credits` };
  }
  const input: PurchaseWorkflowInput = {
    eventId: event.id,
    eventType: event.type,
    session,
    reviewTimeout: settings.purchaseReviewTimeout,
    receiptDeadline: settings.receiptDeadline,
  };
  return {
    action: 'start',
    workflowType: PURCHASE_WORKFLOW_TYPE,
    args: [input],
    searchAttributes: [
      { key: StripeEventType, value: event.type },
      { key: PurchaseStatus, value: 'validating' },
      ...(session.accountId ? [{ key: AccountId, value: session.accountId }] : []),
    ],
  };
}

/** Every Stripe event type the service acts on. Anything else is acknowledged and counted. */
export const STRIPE_EVENT_ROUTES: Readonly<Record<string, Router>> = {
  'checkout.session.completed': startPurchase,
  'checkout.session.async_payment_succeeded': startPurchase,
};

export function routeStripeEvent(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  const router = STRIPE_EVENT_ROUTES[event.type];
  return router
    ? router(event, settings)
    : { action: 'ignore', reason: `event type ${event.type} is not handled` };
}
