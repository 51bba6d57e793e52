import { z } from 'zod';
import { boundedText, currencyCode, nullableString, stripeAmount, stripeId, stripeRef } from './objects';

/**
 * The parts of Stripe's Invoice and Subscription (API version 2025-10-29.clover) that the
 * subscription workflows read, turned into plain summaries. Since 2025-03-31.basil an invoice
 * names its subscription under `parent.subscription_details`, bills it in line items whose
 * `pricing.price_details.price` is the Stripe Price, and lists its payment intents under
 * `payments` (included only when asked for); a subscription's period lives on its items.
 */

const invoiceLineSchema = z.object({
  parent: z
    .object({
      type: boundedText(100),
      subscription_item_details: z.object({ proration: z.boolean().nullish() }).nullish(),
    })
    .nullish(),
  period: z.object({ start: z.number().int(), end: z.number().int() }),
  pricing: z.object({ price_details: z.object({ price: stripeRef }).nullish() }).nullish(),
});

export const invoiceSchema = z.object({
  id: stripeId('in'),
  object: z.literal('invoice'),
  customer: stripeRef,
  customer_email: nullableString,
  billing_reason: nullableString,
  status: nullableString,
  amount_due: stripeAmount,
  amount_paid: stripeAmount,
  currency: currencyCode,
  livemode: z.boolean(),
  attempt_count: z.number().int().nullish(),
  next_payment_attempt: z.number().int().nullish(),
  hosted_invoice_url: nullableString,
  parent: z.object({ subscription_details: z.object({ subscription: stripeRef }).nullish() }).nullish(),
  lines: z.object({ data: z.array(invoiceLineSchema) }),
  payments: z
    .object({
      data: z.array(
        z.object({
          status: nullableString,
          payment: z.object({ type: boundedText(100), payment_intent: stripeRef.optional() }),
        }),
      ),
    })
    .nullish(),
});

/** What the invoice workflow is told about an invoice: plain data, no Stripe types. */
export interface InvoiceSummary {
  id: string;
  customerId: string | null;
  customerEmail: string | null;
  /** The subscription that issued it; null for a one-off invoice. */
  subscriptionId: string | null;
  billingReason: string | null;
  amountDue: number;
  amountPaid: number;
  currency: string;
  livemode: boolean;
  /** The Stripe Price of the subscription line it bills (not a proration). */
  priceId: string | null;
  /** The billing period of that line, in Unix seconds. */
  periodStart: number | null;
  periodEnd: number | null;
  /** The payment intent that paid it, when Stripe included `payments`. */
  paymentIntentId: string | null;
  attemptCount: number | null;
  nextPaymentAttempt: number | null;
  hostedInvoiceUrl: string | null;
}

export function summarizeInvoice(object: unknown): InvoiceSummary {
  const invoice = invoiceSchema.parse(object);
  const line = invoice.lines.data.find(
    (candidate) =>
      candidate.parent?.type === 'subscription_item_details' &&
      candidate.parent.subscription_item_details?.proration !== true,
  );
  const payment = invoice.payments?.data.find(
    (candidate) => candidate.status === 'paid' && candidate.payment.payment_intent,
  );
  return {
    id: invoice.id,
    customerId: invoice.customer,
    customerEmail: invoice.customer_email,
    subscriptionId: invoice.parent?.subscription_details?.subscription ?? null,
    billingReason: invoice.billing_reason,
    amountDue: invoice.amount_due,
    amountPaid: invoice.amount_paid,
    currency: invoice.currency,
    livemode: invoice.livemode,
    priceId: line?.pricing?.price_details?.price ?? null,
    periodStart: line?.period.start ?? null,
    periodEnd: line?.period.end ?? null,
    paymentIntentId: payment?.payment.payment_intent ?? null,
    attemptCount: invoice.attempt_count ?? null,
    nextPaymentAttempt: invoice.next_payment_attempt ?? null,
    hostedInvoiceUrl: invoice.hosted_invoice_url,
  };
}

export const subscriptionSchema = z.object({
  id: stripeId('sub'),
  object: z.literal('subscription'),
  customer: stripeRef,
  status: boundedText(100).min(1),
  cancel_at_period_end: z.boolean(),
  livemode: z.boolean(),
  items: z.object({
    data: z.array(
      z.object({
        current_period_end: z.number().int().nullish(),
        price: z.object({ id: boundedText(255) }),
      }),
    ),
  }),
});

/** What the subscription workflow keeps of a subscription's state. */
export interface SubscriptionSummary {
  id: string;
  customerId: string | null;
  status: string;
  cancelAtPeriodEnd: boolean;
  livemode: boolean;
  /** The Stripe Price of its first item: the catalog maps it to a plan. */
  priceId: string | null;
  currentPeriodEnd: number | null;
}

export function summarizeSubscription(object: unknown): SubscriptionSummary {
  const subscription = subscriptionSchema.parse(object);
  const item = subscription.items.data[0];
  return {
    id: subscription.id,
    customerId: subscription.customer,
    status: subscription.status,
    cancelAtPeriodEnd: subscription.cancel_at_period_end,
    livemode: subscription.livemode,
    priceId: item?.price.id ?? null,
    currentPeriodEnd: item?.current_period_end ?? null,
  };
}
