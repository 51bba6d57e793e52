import { nowSeconds, stripeId } from './events';

/** Stripe's Checkout Session as API version 2025-10-29.clover sends it in checkout.session.* events. */

export interface CheckoutSessionOptions {
  id?: string;
  accountId?: string | null;
  packId?: string | null;
  amountTotal?: number | null;
  currency?: string;
  paymentStatus?: 'paid' | 'unpaid' | 'no_payment_required';
  mode?: 'payment' | 'subscription' | 'setup';
  livemode?: boolean;
  email?: string;
  /** Extra or overriding metadata, for example a tampered `credits`. */
  metadata?: Record<string, string>;
  /** Put the account in client_reference_id only (no metadata.accountId). */
  accountInClientReferenceOnly?: boolean;
  /** In `subscription` mode: the subscription the session started (default: a new one). */
  subscriptionId?: string;
  customerId?: string;
}

/** A Checkout Session as Stripe sends it in checkout.session.* events. */
export function checkoutSession(options: CheckoutSessionOptions = {}): Record<string, unknown> {
  const id = options.id ?? stripeId('cs_test');
  const amountTotal = options.amountTotal === undefined ? 900 : options.amountTotal;
  const paymentStatus = options.paymentStatus ?? 'paid';
  const created = nowSeconds() - 120;
  const metadata: Record<string, string> = {
    ...(options.accountId && !options.accountInClientReferenceOnly ? { accountId: options.accountId } : {}),
    ...(options.packId ? { packId: options.packId } : {}),
    purpose: 'credits',
    ...options.metadata,
  };
  return {
    id,
    object: 'checkout.session',
    adaptive_pricing: { enabled: false },
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: amountTotal,
    amount_total: amountTotal,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: null,
    cancel_url: 'https://app.example.com/billing?canceled=1',
    client_reference_id: options.accountId ?? null,
    client_secret: null,
    collected_information: null,
    consent: null,
    consent_collection: null,
    created,
    currency: options.currency ?? 'usd',
    currency_conversion: null,
    custom_fields: [],
    custom_text: {
      after_submit: null,
      shipping_address: null,
      submit: null,
      terms_of_service_acceptance: null,
    },
    customer: options.customerId ?? stripeId('cus'),
    customer_creation: 'if_required',
    customer_details: {
      address: { city: null, country: 'US', line1: null, line2: null, postal_code: '94107', state: null },
      business_name: null,
      email: options.email ?? 'customer@example.com',
      individual_name: null,
      name: 'Jenny Rosen',
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    },
    customer_email: null,
    discounts: [],
    expires_at: created + 24 * 3600,
    invoice: null,
    invoice_creation: null,
    livemode: options.livemode ?? false,
    locale: null,
    metadata,
    mode: options.mode ?? 'payment',
    origin_context: null,
    // A subscription's first payment belongs to its invoice, not to the session.
    payment_intent:
      paymentStatus === 'no_payment_required' || options.mode === 'subscription' ? null : stripeId('pi'),
    payment_link: null,
    payment_method_collection: 'if_required',
    payment_method_configuration_details: null,
    payment_method_options: { card: { request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'],
    payment_status: paymentStatus,
    permissions: null,
    phone_number_collection: { enabled: false },
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_options: [],
    status: 'complete',
    submit_type: null,
    subscription: options.mode === 'subscription' ? (options.subscriptionId ?? stripeId('sub')) : null,
    success_url: 'https://app.example.com/billing?success=1',
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
    url: null,
    wallet_options: null,
  };
}
