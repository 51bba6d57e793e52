import { z } from 'zod';

/**
 * The parts of Stripe's objects this service reads. Stripe adds fields over time, so unknown
 * fields are allowed here (Stripe's payload is signed; it is not client input), but every field
 * we use is checked for shape before any workflow sees it.
 */

export const stripeEventSchema = z.object({
  id: z.string().regex(/^evt_\w+$/),
  object: z.literal('event'),
  type: z.string().min(1),
  livemode: z.boolean(),
  created: z.number().int(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type StripeEventEnvelope = z.infer<typeof stripeEventSchema>;

export const nullableString = z
  .string()
  .nullish()
  .transform((value) => value ?? null);

/** A reference Stripe sends as an ID, or as the object when expanded: the ID either way. */
export const stripeRef = z
  .union([z.string(), z.object({ id: z.string() })])
  .nullish()
  .transform((value) => (typeof value === 'string' ? value : (value?.id ?? null)));

export const checkoutSessionSchema = z.object({
  id: z.string().regex(/^cs_\w+$/),
  object: z.literal('checkout.session'),
  mode: z.enum(['payment', 'subscription', 'setup']),
  payment_status: z.enum(['paid', 'unpaid', 'no_payment_required']),
  status: z.string().nullish(),
  amount_total: z.number().int().nullable(),
  currency: nullableString,
  livemode: z.boolean(),
  client_reference_id: nullableString,
  customer: stripeRef,
  customer_email: nullableString,
  customer_details: z.object({ email: nullableString }).nullish(),
  payment_intent: stripeRef,
  subscription: stripeRef,
  metadata: z.record(z.string(), z.string()).nullish(),
});

/** What the purchase workflow is told about a checkout session: plain data, no Stripe types. */
export interface CheckoutSessionSummary {
  id: string;
  mode: 'payment' | 'subscription' | 'setup';
  paymentStatus: 'paid' | 'unpaid' | 'no_payment_required';
  amountTotal: number | null;
  currency: string | null;
  livemode: boolean;
  /** metadata.accountId, falling back to client_reference_id. */
  accountId: string | null;
  packId: string | null;
  /** metadata.credits as sent: never a source of credits, only compared to the catalog. */
  claimedCredits: string | null;
  customerId: string | null;
  customerEmail: string | null;
  paymentIntentId: string | null;
  /** The subscription a `subscription` mode session started. */
  subscriptionId: string | null;
}

export function summarizeCheckoutSession(object: unknown): CheckoutSessionSummary {
  const session = checkoutSessionSchema.parse(object);
  const metadata = session.metadata ?? {};
  return {
    id: session.id,
    mode: session.mode,
    paymentStatus: session.payment_status,
    amountTotal: session.amount_total,
    currency: session.currency,
    livemode: session.livemode,
    accountId: metadata.accountId || session.client_reference_id || null,
    packId: metadata.packId || null,
    claimedCredits: metadata.credits ?? null,
    customerId: session.customer,
    customerEmail: session.customer_details?.email ?? session.customer_email ?? null,
    paymentIntentId: session.payment_intent,
    subscriptionId: session.subscription,
  };
}
