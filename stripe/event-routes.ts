import type { Duration, SearchAttributePair } from '@temporalio/common';
import {
  CHECKOUT_CLOSED_WORKFLOW_TYPE,
  PURCHASE_WORKFLOW_TYPE,
  type CheckoutClosedWorkflowInput,
  type PurchaseWorkflowInput,
} from '../workflows/purchases/contract';
import {
  INVOICE_WORKFLOW_TYPE,
  SUBSCRIPTION_WORKFLOW_TYPE,
  type InvoiceWorkflowInput,
  type SubscriptionWorkflowInput,
} from '../workflows/subscriptions/contract';
import {
  DISPUTE_WORKFLOW_TYPE,
  REFUND_WORKFLOW_TYPE,
  type DisputeWorkflowInput,
  type RefundWorkflowInput,
} from '../workflows/reversals/contract';
import {
  AccountId,
  BillingStatus,
  PurchaseStatus,
  StripeEventType,
} from '../workflows/shared/search-attributes';
import { summarizeInvoice, summarizeSubscription } from './billing-objects';
import { summarizeCharge, summarizeDispute } from './charge-objects';
import { summarizeCheckoutSession, type StripeEventEnvelope } from './objects';
import { summarizePaymentIntent } from './payment-intent';
import {
  TOPUP_WORKFLOW_TYPE,
  topupLateDeclineWorkflowId,
  topupLatePaymentWorkflowId,
  topupPaymentSignal,
  topupWorkflowId,
  type TopupPaymentSignal,
  type TopupWorkflowInput,
} from '../workflows/topups/contract';

/** What the webhook does with one verified event: start a workflow, or acknowledge and ignore. */
export type EventRoute =
  | { action: 'ignore'; reason: string }
  | {
      action: 'start';
      workflowType: string;
      args: unknown[];
      searchAttributes: SearchAttributePair[];
      /**
       * The event is news for a running business workflow: signal it under its own ID (starting
       * it if it is not running) instead of starting one under the event's ID.
       */
      signal?: { workflowId: string; name: string; args: unknown[] };
      /**
       * When the signalled workflow has ended in none of `doneStages`, the event still has work:
       * start the same type under this ID (its own, so a redelivery is a duplicate).
       */
      afterEnd?: { doneStages: string[]; workflowId: string; args: unknown[] };
    };

export interface RouteSettings {
  purchaseReviewTimeout: Duration;
  receiptDeadline: Duration;
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
  // A purchase is credited to its buyer (client_reference_id or the checkout snapshot); a
  // subscription checkout, which this service does not open, may name its account in metadata.
  const { accountId } = session;
  if (session.mode === 'subscription') {
    if (!session.subscriptionId)
      return { action: 'ignore', reason: 'subscription checkout without a subscription' };
    const link = {
      subscriptionId: session.subscriptionId,
      accountId: accountId ?? session.metadataAccountId ?? null,
      customerId: session.customerId,
      checkoutSessionId: session.id,
      livemode: session.livemode,
    };
    return start<SubscriptionWorkflowInput>(
      event,
      { type: SUBSCRIPTION_WORKFLOW_TYPE, stage: billingStage('linking'), accountId: link.accountId },
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

/**
 * A payment intent our own top-up created (metadata.purpose `topup`): the event goes to that
 * top-up's workflow by signal. Checkout's payment intents are granted by their session's events.
 */
const routeTopupPayment: Router = (event) => {
  const metadata = (event.data.object as { metadata?: { purpose?: unknown } | null }).metadata;
  if (metadata?.purpose !== 'topup') {
    return {
      action: 'ignore',
      reason: 'a payment intent of no automatic top-up (checkout grants by session)',
    };
  }
  const paymentIntent = summarizePaymentIntent(event.data.object);
  if (!paymentIntent.topupId || !paymentIntent.accountId) {
    return { action: 'ignore', reason: 'a top-up payment intent that names no top-up or account' };
  }
  const input: TopupWorkflowInput = { topupId: paymentIntent.topupId, accountId: paymentIntent.accountId };
  const news: TopupPaymentSignal = { eventId: event.id, eventType: event.type, paymentIntent };
  return {
    action: 'start',
    workflowType: TOPUP_WORKFLOW_TYPE,
    args: [input],
    searchAttributes: [
      { key: StripeEventType, value: event.type },
      billingStage('starting'),
      { key: AccountId, value: paymentIntent.accountId },
    ],
    signal: {
      workflowId: topupWorkflowId(paymentIntent.topupId),
      name: topupPaymentSignal.name,
      args: [news],
    },
    // Money taken must become credits even when the top-up's run ended without them, and a
    // top-up whose run ended not knowing what became of its charge is told declined.
    afterEnd: {
      // Granted, refused on its checks, or no such top-up: a late run could change nothing.
      doneStages: ['succeeded', 'refused', 'unknown_topup'],
      workflowId:
        event.type === 'payment_intent.succeeded'
          ? topupLatePaymentWorkflowId(paymentIntent.id)
          : topupLateDeclineWorkflowId(paymentIntent.id),
      args: [{ ...input, latePayment: news }],
    },
  };
};

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
  'payment_intent.succeeded': routeTopupPayment,
  'payment_intent.payment_failed': routeTopupPayment,
};

export function routeStripeEvent(event: StripeEventEnvelope, settings: RouteSettings): EventRoute {
  // Own keys only: an event type such as `constructor` or `__proto__` is not a route.
  const router = Object.hasOwn(STRIPE_EVENT_ROUTES, event.type) ? STRIPE_EVENT_ROUTES[event.type] : undefined;
  return router
    ? router(event, settings)
    : { action: 'ignore', reason: `event type ${event.type} is not handled` };
}

/** The event types that have a route, in the table's order: what reconciliation asks Stripe for. */
export const ROUTED_STRIPE_EVENT_TYPES: readonly string[] = Object.keys(STRIPE_EVENT_ROUTES);
