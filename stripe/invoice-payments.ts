import type Stripe from 'stripe';

/** Answers which invoice a payment intent paid, or null when it paid none. */
export type InvoicePaymentLookup = (paymentIntentId: string) => Promise<string | null>;

/** The invoice payment made with `paymentIntentId` (an invoice has one per attempt that paid). */
export function invoicePaymentsQuery(paymentIntentId: string): Stripe.InvoicePaymentListParams {
  return { payment: { type: 'payment_intent', payment_intent: paymentIntentId }, limit: 1 };
}

export function listInvoicePaymentsOf(
  stripe: Stripe,
  paymentIntentId: string,
): Promise<Stripe.ApiList<Stripe.InvoicePayment>> {
  return stripe.invoicePayments.list(invoicePaymentsQuery(paymentIntentId));
}

/**
 * Since API version 2025-03-31.basil neither a Charge nor a PaymentIntent names its invoice, and
 * an `invoice.*` event carries the invoice's payments only when asked for. So a refund or dispute
 * of a subscription payment asks Stripe's invoice payments which invoice that payment intent paid.
 */
export function stripeInvoicePaymentLookup(stripe: Stripe): InvoicePaymentLookup {
  return async (paymentIntentId) => {
    const page = await listInvoicePaymentsOf(stripe, paymentIntentId);
    const invoice = page.data[0]?.invoice;
    if (!invoice) return null;
    return typeof invoice === 'string' ? invoice : invoice.id;
  };
}
