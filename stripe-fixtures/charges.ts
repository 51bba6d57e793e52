import { DAY, nowSeconds, stripeId, type StripeObject } from './events';

/**
 * Stripe's Charge, Refund and Dispute objects as API version 2025-10-29.clover sends them in
 * events: a charge no longer embeds its refunds, so a refund is told by its cumulative
 * `amount_refunded`.
 */

export interface ChargeOptions {
  id?: string;
  paymentIntentId?: string;
  amount?: number;
  /** Cumulative amount refunded so far. */
  amountRefunded?: number;
  currency?: string;
  livemode?: boolean;
  disputed?: boolean;
}

/** A Charge as Stripe sends it in charge.* events (no embedded `refunds` since 2022-11-15). */
export function charge(options: ChargeOptions = {}): StripeObject {
  const amount = options.amount ?? 900;
  const amountRefunded = options.amountRefunded ?? 0;
  const created = nowSeconds() - 3600;
  return {
    id: options.id ?? stripeId('ch'),
    object: 'charge',
    amount,
    amount_captured: amount,
    amount_refunded: amountRefunded,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: stripeId('txn'),
    billing_details: {
      address: { city: null, country: 'US', line1: null, line2: null, postal_code: '94107', state: null },
      email: 'customer@example.com',
      name: 'Jenny Rosen',
      phone: null,
      tax_id: null,
    },
    calculated_statement_descriptor: 'CREDITS',
    captured: true,
    created,
    currency: options.currency ?? 'usd',
    customer: stripeId('cus'),
    description: null,
    destination: null,
    dispute: null,
    disputed: options.disputed ?? false,
    failure_balance_transaction: null,
    failure_code: null,
    failure_message: null,
    fraud_details: {},
    livemode: options.livemode ?? false,
    metadata: {},
    on_behalf_of: null,
    outcome: {
      advice_code: null,
      network_advice_code: null,
      network_decline_code: null,
      network_status: 'approved_by_network',
      reason: null,
      risk_level: 'normal',
      seller_message: 'Payment complete.',
      type: 'authorized',
    },
    paid: true,
    payment_intent: options.paymentIntentId ?? stripeId('pi'),
    payment_method: stripeId('pm'),
    payment_method_details: {
      card: {
        brand: 'visa',
        checks: { address_line1_check: null, address_postal_code_check: 'pass', cvc_check: 'pass' },
        country: 'US',
        exp_month: 8,
        exp_year: 2030,
        fingerprint: 'Xt5EWLLDS7FJjR1c',
        funding: 'credit',
        last4: '4242',
        network: 'visa',
        three_d_secure: null,
        wallet: null,
      },
      type: 'card',
    },
    radar_options: {},
    receipt_email: null,
    receipt_number: null,
    receipt_url: null,
    refunded: amountRefunded >= amount,
    review: null,
    shipping: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: 'succeeded',
    transfer_data: null,
    transfer_group: null,
  };
}

export interface RefundOptions {
  id?: string;
  chargeId?: string;
  paymentIntentId?: string;
  amount?: number;
  currency?: string;
  status?: 'pending' | 'succeeded' | 'failed' | 'canceled';
}

/** A Refund as Stripe sends it in refund.* events (the service acts on charge.refunded instead). */
export function refund(options: RefundOptions = {}): StripeObject {
  return {
    id: options.id ?? stripeId('re'),
    object: 'refund',
    amount: options.amount ?? 900,
    balance_transaction: stripeId('txn'),
    charge: options.chargeId ?? stripeId('ch'),
    created: nowSeconds(),
    currency: options.currency ?? 'usd',
    destination_details: {
      card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' },
      type: 'card',
    },
    metadata: {},
    payment_intent: options.paymentIntentId ?? stripeId('pi'),
    reason: 'requested_by_customer',
    receipt_number: null,
    source_transfer_reversal: null,
    status: options.status ?? 'succeeded',
    transfer_reversal: null,
  };
}

export interface DisputeOptions {
  id?: string;
  chargeId?: string;
  paymentIntentId?: string;
  amount?: number;
  currency?: string;
  /** `needs_response` when created; `won`, `lost` or `warning_closed` when closed. */
  status?: string;
  reason?: string;
  livemode?: boolean;
}

/** A Dispute as Stripe sends it in charge.dispute.* events. */
export function dispute(options: DisputeOptions = {}): StripeObject {
  const created = nowSeconds();
  const closed = ['won', 'lost', 'warning_closed'].includes(options.status ?? '');
  return {
    id: options.id ?? stripeId('dp'),
    object: 'dispute',
    amount: options.amount ?? 900,
    balance_transactions: [],
    charge: options.chargeId ?? stripeId('ch'),
    created,
    currency: options.currency ?? 'usd',
    enhanced_eligibility_types: [],
    evidence: {
      access_activity_log: null,
      billing_address: null,
      cancellation_policy: null,
      cancellation_policy_disclosure: null,
      cancellation_rebuttal: null,
      customer_communication: null,
      customer_email_address: 'customer@example.com',
      customer_name: 'Jenny Rosen',
      customer_purchase_ip: null,
      customer_signature: null,
      duplicate_charge_documentation: null,
      duplicate_charge_explanation: null,
      duplicate_charge_id: null,
      enhanced_evidence: {},
      product_description: null,
      receipt: null,
      refund_policy: null,
      refund_policy_disclosure: null,
      refund_refusal_explanation: null,
      service_date: null,
      service_documentation: null,
      shipping_address: null,
      shipping_carrier: null,
      shipping_date: null,
      shipping_documentation: null,
      shipping_tracking_number: null,
      uncategorized_file: null,
      uncategorized_text: null,
    },
    evidence_details: {
      due_by: created + 7 * DAY,
      enhanced_eligibility: {},
      has_evidence: closed,
      past_due: false,
      submission_count: closed ? 1 : 0,
    },
    is_charge_refundable: false,
    livemode: options.livemode ?? false,
    metadata: {},
    payment_intent: options.paymentIntentId ?? stripeId('pi'),
    payment_method_details: {
      card: { brand: 'visa', case_type: 'chargeback', network_reason_code: '10.4' },
      type: 'card',
    },
    reason: options.reason ?? 'fraudulent',
    status: options.status ?? 'needs_response',
  };
}
