import { z } from 'zod';
import { boundedText, currencyCode, stripeAmount, stripeId, stripeRef } from './objects';

/**
 * The parts of Stripe's Charge and Dispute (API version 2025-10-29.clover) that the refund and
 * dispute workflows read. A Charge no longer embeds its refunds: `amount_refunded` is the
 * cumulative total, which is all the refund workflow needs.
 */

export const chargeSchema = z.object({
  id: stripeId('ch|py'),
  object: z.literal('charge'),
  amount: stripeAmount,
  amount_refunded: stripeAmount,
  currency: currencyCode,
  livemode: z.boolean(),
  payment_intent: stripeRef,
});

export interface ChargeSummary {
  id: string;
  paymentIntentId: string | null;
  amount: number;
  /** Everything refunded on this charge so far, in minor units. */
  amountRefunded: number;
  currency: string;
  livemode: boolean;
}

export function summarizeCharge(object: unknown): ChargeSummary {
  const charge = chargeSchema.parse(object);
  return {
    id: charge.id,
    paymentIntentId: charge.payment_intent,
    amount: charge.amount,
    amountRefunded: charge.amount_refunded,
    currency: charge.currency,
    livemode: charge.livemode,
  };
}

export const disputeSchema = z.object({
  id: stripeId('dp|du'),
  object: z.literal('dispute'),
  amount: stripeAmount,
  charge: stripeRef,
  currency: currencyCode,
  livemode: z.boolean(),
  payment_intent: stripeRef,
  reason: boundedText(100).nullish(),
  status: boundedText(100).min(1),
});

export interface DisputeSummary {
  id: string;
  chargeId: string | null;
  paymentIntentId: string | null;
  amount: number;
  currency: string;
  livemode: boolean;
  reason: string | null;
  status: string;
}

export function summarizeDispute(object: unknown): DisputeSummary {
  const dispute = disputeSchema.parse(object);
  return {
    id: dispute.id,
    chargeId: dispute.charge,
    paymentIntentId: dispute.payment_intent,
    amount: dispute.amount,
    currency: dispute.currency,
    livemode: dispute.livemode,
    reason: dispute.reason ?? null,
    status: dispute.status,
  };
}
