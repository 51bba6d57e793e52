import type Stripe from 'stripe';
import { stripeIdempotencyKey } from './idempotency-keys';

/** Cards only, newest first, one: the card an automatic top-up charges. */
export function savedCardsQuery(): Stripe.CustomerListPaymentMethodsParams {
  return { type: 'card', limit: 1 };
}

/** The newest card saved on the customer for off-session use: the page holds one, or none. */
export function listSavedCards(
  stripe: Stripe,
  customerId: string,
): Promise<Stripe.ApiList<Stripe.PaymentMethod>> {
  return stripe.customers.listPaymentMethods(customerId, savedCardsQuery());
}

/** An automatic top-up's charge of the saved card, in our terms. */
export interface OffSessionPayment {
  topupId: string;
  accountId: string;
  customerId: string;
  paymentMethodId: string;
  amountCents: number;
  currency: string;
}

/**
 * The payment intent, created and confirmed at once without the customer. Its key is the
 * top-up's own ID, so a retried activity is the same request, answered the same.
 */
export function offSessionPaymentRequest(payment: OffSessionPayment): {
  params: Stripe.PaymentIntentCreateParams;
  options: Stripe.RequestOptions;
} {
  return {
    params: {
      amount: payment.amountCents,
      currency: payment.currency,
      customer: payment.customerId,
      payment_method: payment.paymentMethodId,
      off_session: true,
      confirm: true,
      description: 'Automatic credit top-up',
      metadata: { purpose: 'topup', topupId: payment.topupId, accountId: payment.accountId },
    },
    options: { idempotencyKey: stripeIdempotencyKey(`topup:${payment.topupId}`) },
  };
}

export function createOffSessionPayment(
  stripe: Stripe,
  payment: OffSessionPayment,
): Promise<Stripe.Response<Stripe.PaymentIntent>> {
  const { params, options } = offSessionPaymentRequest(payment);
  return stripe.paymentIntents.create(params, options);
}

export function retrievePaymentIntent(
  stripe: Stripe,
  paymentIntentId: string,
): Promise<Stripe.Response<Stripe.PaymentIntent>> {
  return stripe.paymentIntents.retrieve(paymentIntentId);
}
