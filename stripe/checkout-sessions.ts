import type Stripe from 'stripe';
import { stripeIdempotencyKey } from './idempotency-keys';

/** A Checkout session selling credits, in our terms: the API's checkout and a failed top-up's link. */
export interface CreditsCheckout {
  accountId: string;
  /** The catalog pack sold, or null for custom credits. */
  packId: string | null;
  credits: number;
  amountCents: number;
  currency: string;
  /** The line item's name, as the customer reads it on Stripe's page. */
  productName: string;
  /** The account's Stripe customer, or else the email Checkout fills in, or neither. */
  payer: { customerId: string } | { email: string } | null;
  /** Saves the card for off-session payments (automatic top-ups). */
  saveCard: boolean;
  successUrl: string;
  cancelUrl: string;
  /** Our own key of this sale (`checkout:…`, `topup-recovery:…`). */
  idempotencyKey: string;
}

/**
 * The request that creates the session. Our metadata names the account, the pack and the credits
 * for the payment intent too; the purchase workflow trusts none of it (the snapshot decides).
 */
export function creditsCheckoutRequest(checkout: CreditsCheckout): {
  params: Stripe.Checkout.SessionCreateParams;
  options: Stripe.RequestOptions;
} {
  const metadata = {
    accountId: checkout.accountId,
    ...(checkout.packId ? { packId: checkout.packId } : {}),
    credits: String(checkout.credits),
    purpose: 'credits',
  };
  const { payer } = checkout;
  return {
    params: {
      mode: 'payment',
      client_reference_id: checkout.accountId,
      metadata,
      payment_intent_data: {
        metadata,
        ...(checkout.saveCard ? { setup_future_usage: 'off_session' as const } : {}),
      },
      line_items: [
        {
          quantity: 1,
          price_data: {
            currency: checkout.currency,
            unit_amount: checkout.amountCents,
            product_data: { name: checkout.productName },
          },
        },
      ],
      ...(payer && 'customerId' in payer ? { customer: payer.customerId } : {}),
      ...(payer && 'email' in payer ? { customer_email: payer.email } : {}),
      success_url: checkout.successUrl,
      cancel_url: checkout.cancelUrl,
    },
    options: { idempotencyKey: stripeIdempotencyKey(checkout.idempotencyKey) },
  };
}

export function createCreditsCheckoutSession(
  stripe: Stripe,
  checkout: CreditsCheckout,
): Promise<Stripe.Response<Stripe.Checkout.Session>> {
  const { params, options } = creditsCheckoutRequest(checkout);
  return stripe.checkout.sessions.create(params, options);
}
