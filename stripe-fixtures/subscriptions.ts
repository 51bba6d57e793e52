import { DAY, nowSeconds, stripeId, type StripeObject } from './events';

/**
 * Stripe's Price, Subscription and Invoice objects as API version 2025-10-29.clover sends them in
 * events: an invoice names its subscription under `parent.subscription_details` and its payment
 * intents under `payments`; a subscription's billing period is on its items.
 */

/** A Stripe Price of a monthly plan, as embedded in subscription items. */
function recurringPrice(priceId: string, unitAmount: number, currency: string, livemode: boolean) {
  return {
    id: priceId,
    object: 'price',
    active: true,
    billing_scheme: 'per_unit',
    created: nowSeconds() - 90 * DAY,
    currency,
    custom_unit_amount: null,
    livemode,
    lookup_key: null,
    metadata: {},
    nickname: null,
    product: `prod_${priceId.replace(/^price_/, '')}`,
    recurring: { interval: 'month', interval_count: 1, meter: null, usage_type: 'licensed' },
    tax_behavior: 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: 'recurring',
    unit_amount: unitAmount,
    unit_amount_decimal: String(unitAmount),
  };
}

export interface SubscriptionOptions {
  id?: string;
  customerId?: string;
  priceId?: string;
  unitAmount?: number;
  currency?: string;
  status?: string;
  /** Start of the current period (Unix seconds); the period is a month. */
  periodStart?: number;
  cancelAtPeriodEnd?: boolean;
  /** When it ended (status canceled). */
  endedAt?: number | null;
  livemode?: boolean;
  metadata?: Record<string, string>;
}

/** A Subscription as Stripe sends it in customer.subscription.* events. */
export function subscription(options: SubscriptionOptions = {}): StripeObject {
  const id = options.id ?? stripeId('sub');
  const livemode = options.livemode ?? false;
  const currency = options.currency ?? 'usd';
  const periodStart = options.periodStart ?? nowSeconds();
  const periodEnd = periodStart + 30 * DAY;
  const price = recurringPrice(
    options.priceId ?? 'price_basic_monthly',
    options.unitAmount ?? 1900,
    currency,
    livemode,
  );
  const status = options.status ?? 'active';
  const endedAt = options.endedAt ?? (status === 'canceled' ? nowSeconds() : null);
  return {
    id,
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: periodStart,
    billing_cycle_anchor_config: null,
    billing_mode: { type: 'flexible', updated_at: periodStart },
    billing_thresholds: null,
    cancel_at: options.cancelAtPeriodEnd ? periodEnd : null,
    cancel_at_period_end: options.cancelAtPeriodEnd ?? false,
    canceled_at: endedAt,
    cancellation_details: {
      comment: null,
      feedback: null,
      reason: endedAt ? 'cancellation_requested' : null,
    },
    collection_method: 'charge_automatically',
    created: periodStart,
    currency,
    customer: options.customerId ?? stripeId('cus'),
    days_until_due: null,
    default_payment_method: stripeId('pm'),
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: endedAt,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: {
      object: 'list',
      data: [
        {
          id: stripeId('si'),
          object: 'subscription_item',
          billing_thresholds: null,
          created: periodStart,
          current_period_end: periodEnd,
          current_period_start: periodStart,
          discounts: [],
          metadata: {},
          plan: {
            id: price.id,
            object: 'plan',
            active: true,
            amount: price.unit_amount,
            amount_decimal: price.unit_amount_decimal,
            billing_scheme: 'per_unit',
            created: price.created,
            currency,
            interval: 'month',
            interval_count: 1,
            livemode,
            metadata: {},
            meter: null,
            nickname: null,
            product: price.product,
            tiers_mode: null,
            transform_usage: null,
            trial_period_days: null,
            usage_type: 'licensed',
          },
          price,
          quantity: 1,
          subscription: id,
          tax_rates: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: stripeId('in'),
    livemode,
    metadata: options.metadata ?? {},
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: 'off',
    },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: periodStart,
    status,
    test_clock: null,
    transfer_data: null,
    trial_end: null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
    trial_start: null,
  };
}

export interface InvoiceOptions {
  id?: string;
  customerId?: string;
  subscriptionId?: string | null;
  priceId?: string;
  /** What the subscription line bills, in minor units. */
  amount?: number;
  currency?: string;
  billingReason?: 'subscription_create' | 'subscription_cycle' | 'subscription_update' | 'manual';
  /** `paid` for invoice.paid / payment_succeeded, `open` for payment_failed. */
  status?: 'paid' | 'open';
  /** Start of the billed period (Unix seconds); the period is a month. */
  periodStart?: number;
  paymentIntentId?: string;
  /**
   * Stripe's own events leave an invoice's `payments` out (it is an includable field); false
   * sends that shape, where only Stripe's invoice payments API knows the payment intent.
   */
  includePayments?: boolean;
  attemptCount?: number;
  livemode?: boolean;
  email?: string;
}

/** An Invoice as Stripe sends it in invoice.* events, with `payments` unless told otherwise. */
export function invoice(options: InvoiceOptions = {}): StripeObject {
  const id = options.id ?? stripeId('in');
  const livemode = options.livemode ?? false;
  const currency = options.currency ?? 'usd';
  const amount = options.amount ?? 1900;
  const paid = (options.status ?? 'paid') === 'paid';
  const periodStart = options.periodStart ?? nowSeconds();
  const periodEnd = periodStart + 30 * DAY;
  const subscriptionId = options.subscriptionId === undefined ? stripeId('sub') : options.subscriptionId;
  const priceId = options.priceId ?? 'price_basic_monthly';
  const created = periodStart;
  const paymentIntentId = options.paymentIntentId ?? stripeId('pi');
  return {
    id,
    object: 'invoice',
    account_country: 'US',
    account_name: 'Credits Inc.',
    account_tax_ids: null,
    amount_due: amount,
    amount_overpaid: 0,
    amount_paid: paid ? amount : 0,
    amount_remaining: paid ? 0 : amount,
    amount_shipping: 0,
    application: null,
    attempt_count: options.attemptCount ?? 1,
    attempted: true,
    auto_advance: !paid,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: options.billingReason ?? 'subscription_create',
    collection_method: 'charge_automatically',
    created,
    currency,
    custom_fields: null,
    customer: options.customerId ?? stripeId('cus'),
    customer_address: null,
    customer_email: options.email ?? 'customer@example.com',
    customer_name: 'Jenny Rosen',
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: 'none',
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: created,
    ending_balance: 0,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_test/${id}`,
    invoice_pdf: `https://pay.stripe.com/invoice/acct_test/${id}/pdf`,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: {
      object: 'list',
      data: [
        {
          id: stripeId('il'),
          object: 'line_item',
          amount,
          currency,
          description: '1 × Plan (at $19.00 / month)',
          discount_amounts: [],
          discountable: true,
          discounts: [],
          invoice: id,
          livemode,
          metadata: {},
          parent: subscriptionId
            ? {
                invoice_item_details: null,
                subscription_item_details: {
                  invoice_item: null,
                  proration: false,
                  proration_details: { credited_items: null },
                  subscription: subscriptionId,
                  subscription_item: stripeId('si'),
                },
                type: 'subscription_item_details',
              }
            : null,
          period: { end: periodEnd, start: periodStart },
          pretax_credit_amounts: [],
          pricing: {
            price_details: { price: priceId, product: `prod_${priceId.replace(/^price_/, '')}` },
            type: 'price_details',
            unit_amount_decimal: String(amount),
          },
          quantity: 1,
          taxes: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/invoices/${id}/lines`,
    },
    livemode,
    metadata: {},
    next_payment_attempt: paid ? null : created + 3 * DAY,
    number: `CRED-${id.slice(-6).toUpperCase()}`,
    on_behalf_of: null,
    parent: subscriptionId
      ? {
          quote_details: null,
          subscription_details: { metadata: {}, subscription: subscriptionId },
          type: 'subscription_details',
        }
      : null,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    ...(options.includePayments === false
      ? {}
      : {
          payments: {
            object: 'list',
            data: [
              {
                id: stripeId('inpay'),
                object: 'invoice_payment',
                amount_paid: paid ? amount : null,
                amount_requested: amount,
                created,
                currency,
                invoice: id,
                is_default: true,
                livemode,
                payment: { payment_intent: paymentIntentId, type: 'payment_intent' },
                status: paid ? 'paid' : 'open',
                status_transitions: { canceled_at: null, paid_at: paid ? created : null },
              },
            ],
            has_more: false,
            total_count: 1,
            url: `/v1/invoice_payments?invoice=${id}`,
          },
        }),
    period_end: created,
    period_start: created,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: paid ? 'paid' : 'open',
    status_transitions: {
      finalized_at: created,
      marked_uncollectible_at: null,
      paid_at: paid ? created : null,
      voided_at: null,
    },
    subtotal: amount,
    subtotal_excluding_tax: amount,
    test_clock: null,
    total: amount,
    total_discount_amounts: [],
    total_excluding_tax: amount,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: created,
  };
}
