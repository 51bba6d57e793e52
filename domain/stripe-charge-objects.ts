import { z } from 'zod';
import { stripeRef } from './stripe-objects';

/**
 * The parts of Stripe's Charge and Dispute (API version 2025-10-29.clover) that the refund and
 * dispute workflows read. A Charge no longer embeds its refunds: `amount_refunded` is the
 * cumulative total, which is all the refund workflow needs.
 */

export const chargeSchema = z.object({
  id: z.string().regex(/^(ch|py)_\w+$/),
  object: z.literal('charge'),
  amount: z.number().int().nonnegative(),
  amount_refunded: z.number().int().nonnegative(),
  currency: z.string(),
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
    currency: charge.currency.toLowerCase(),
    livemode: charge.livemode,
  };
}

export const disputeSchema = z.object({
  id: z.string().regex(/^(dp|du)_\w+$/),
  object: z.literal('dispute'),
  amount: z.number().int().nonnegative(),
  charge: stripeRef,
  currency: z.string(),
  livemode: z.boolean(),
  payment_intent: stripeRef,
  reason: z.string().nullish(),
  status: z.string().min(1),
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
    currency: dispute.currency.toLowerCase(),
    livemode: dispute.livemode,
    reason: dispute.reason ?? null,
    status: dispute.status,
  };
}
