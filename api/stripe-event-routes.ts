import type { SearchAttributePair } from '@temporalio/common';
import {
  CHECKOUT_CLOSED_WORKFLOW_TYPE,
  type CheckoutClosedWorkflowInput,
} from '../domain/checkout-closed-workflow-contract';
import { INVOICE_WORKFLOW_TYPE, type InvoiceWorkflowInput } from '../domain/invoice-workflow-contract';
import { PURCHASE_WORKFLOW_TYPE, type PurchaseWorkflowInput } from '../domain/purchase-workflow-contract';
import {
  DISPUTE_WORKFLOW_TYPE,
  REFUND_WORKFLOW_TYPE,
  type DisputeWorkflowInput,
  type RefundWorkflowInput,
} from '../domain/reversal-workflow-contracts';
import { AccountId, BillingStatus, PurchaseStatus, StripeEventType } from '../domain/search-attributes';
import { summarizeInvoice, summarizeSubscription } from '../domain/stripe-billing-objects';
import { summarizeCharge, summarizeDispute } from '../domain/stripe-charge-objects';
import { summarizeCheckoutSession, type StripeEventEnvelope } from '../domain/stripe-objects';
import {
  SUBSCRIPTION_WORKFLOW_TYPE,
  type SubscriptionWorkflowInput,
} from '../domain/subscription-workflow-contract';

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

/**
 * How long a workflow waits for the event it depends on (the checkout session that links a
 * subscription, the grant a refund takes back). Stripe retries a delivery for up to three days,
 * so whatever is coming has arrived by then.
 */
const EARLIER_EVENT_WAIT = '3 days';

type EventFields = 'eventId' | 'eventType';
/** A workflow input without the event's ID and type, which `start` fills in. */
type FieldsOf<I> = I extends unknown ? Omit<I, EventFields> : never;

/** Starts `workflowType` with the event's ID and type and the given fields as its input. */
function start<I extends Record<EventFields, string>>(
  event: StripeEventEnvelope,
  workflow: { type: string; stage: SearchAttributePair; accountId?: string | null },
  fields: FieldsOf<I>,
): EventRoute {
  return {
    action: 'start',
    workflowType: workflow.type,
    args: [{ eventId: event.id, eventType: event.type, ...fields }],
    searchAttributes: [
      { key: StripeEventType, value: event.type },
      workflow.stage,
      ...(workflow.accountId ? [{ key: AccountId, value: workflow.accountId }] : []),
    ],
  };
}

const billingStage = (value: string): SearchAttributePair => ({ key: BillingStatus, value });

/** A completed (or delayed-then-paid) checkout: a purchase in payment mode, a link in subscription mode. */
function startCheckout(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  const session = summarizeCheckoutSession(event.data.object);
  const { accountId } = session;
  if (session.mode === 'subscription') {
    if (!session.subscriptionId)
      return { action: 'ignore', reason: 'subscription checkout without a subscription' };
    const link = {
      subscriptionId: session.subscriptionId,
      accountId,
      customerId: session.customerId,
      checkoutSessionId: session.id,
      livemode: session.livemode,
    };
    return start<SubscriptionWorkflowInput>(
      event,
      { type: SUBSCRIPTION_WORKFLOW_TYPE, stage: billingStage('linking'), accountId },
      { eventCreated: event.created, receiptDeadline: settings.receiptDeadline, action: 'link', link },
    );
  }
  if (session.mode !== 'payment') {
    return { action: 'ignore', reason: `checkout session in ${session.mode} mode grants no credits` };
  }
  return start<PurchaseWorkflowInput>(
    event,
    { type: PURCHASE_WORKFLOW_TYPE, stage: { key: PurchaseStatus, value: 'validating' }, accountId },
    { session, reviewTimeout: settings.purchaseReviewTimeout, receiptDeadline: settings.receiptDeadline },
  );
}

/** A checkout that will never pay: its delayed payment failed, or it expired. */
function startCheckoutClosed(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  const session = summarizeCheckoutSession(event.data.object);
  if (session.mode !== 'payment') {
    return { action: 'ignore', reason: `checkout session in ${session.mode} mode was never a purchase` };
  }
  return start<CheckoutClosedWorkflowInput>(
    event,
    { type: CHECKOUT_CLOSED_WORKFLOW_TYPE, stage: billingStage('recording'), accountId: session.accountId },
    {
      outcome: event.type === 'checkout.session.expired' ? 'expired' : 'payment_failed',
      session,
      receiptDeadline: settings.receiptDeadline,
    },
  );
}

function startSubscriptionSync(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  return start<SubscriptionWorkflowInput>(
    event,
    { type: SUBSCRIPTION_WORKFLOW_TYPE, stage: billingStage('syncing') },
    {
      eventCreated: event.created,
      receiptDeadline: settings.receiptDeadline,
      action: 'sync',
      subscription: summarizeSubscription(event.data.object),
    },
  );
}

const startInvoice =
  (action: InvoiceWorkflowInput['action']): Router =>
  (event, settings) =>
    start<InvoiceWorkflowInput>(
      event,
      { type: INVOICE_WORKFLOW_TYPE, stage: billingStage('checking') },
      {
        action,
        invoice: summarizeInvoice(event.data.object),
        timeouts: {
          link: EARLIER_EVENT_WAIT,
          review: settings.purchaseReviewTimeout,
          receipt: settings.receiptDeadline,
        },
      },
    );

const startRefund: Router = (event) =>
  start<RefundWorkflowInput>(
    event,
    { type: REFUND_WORKFLOW_TYPE, stage: billingStage('applying') },
    { charge: summarizeCharge(event.data.object), purchaseTimeout: EARLIER_EVENT_WAIT },
  );

const startDispute =
  (phase: DisputeWorkflowInput['phase']): Router =>
  (event) =>
    start<DisputeWorkflowInput>(
      event,
      { type: DISPUTE_WORKFLOW_TYPE, stage: billingStage('applying') },
      { dispute: summarizeDispute(event.data.object), phase, purchaseTimeout: EARLIER_EVENT_WAIT },
    );

const acknowledge =
  (reason: string): Router =>
  () => ({ action: 'ignore', reason });

/** Every Stripe event type the service acts on. Anything else is acknowledged and counted. */
export const STRIPE_EVENT_ROUTES: Readonly<Record<string, Router>> = {
  'checkout.session.completed': startCheckout,
  'checkout.session.async_payment_succeeded': startCheckout,
  'checkout.session.async_payment_failed': startCheckoutClosed,
  'checkout.session.expired': startCheckoutClosed,
  'customer.subscription.created': startSubscriptionSync,
  'customer.subscription.updated': startSubscriptionSync,
  'customer.subscription.deleted': startSubscriptionSync,
  'invoice.paid': startInvoice('grant'),
  // Sent with every invoice.paid of a charged invoice: granting on both would credit twice.
  'invoice.payment_succeeded': acknowledge('covered by invoice.paid, which grants the period'),
  'invoice.payment_failed': startInvoice('dunning'),
  'charge.refunded': startRefund,
  'charge.dispute.created': startDispute('opened'),
  'charge.dispute.closed': startDispute('closed'),
};

export function routeStripeEvent(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  // Own keys only: an event type such as `constructor` or `__proto__` is not a route.
  const router = Object.hasOwn(STRIPE_EVENT_ROUTES, event.type) ? STRIPE_EVENT_ROUTES[event.type] : undefined;
  return router
    ? router(event, settings)
    : { action: 'ignore', reason: `event type ${event.type} is not handled` };
}
