import { z } from 'zod';

/**
 * The parts of Stripe's objects this service reads. Stripe adds fields over time, so unknown
 * fields are allowed here (Stripe's payload is signed; it is not client input), but every field
 * we use is checked for shape before any workflow sees it.
 */

// Stripe's own limits, so a field past them is refused here, before it reaches PostgreSQL (which
// refuses NUL in text) or Temporal (which refuses a search attribute over 2 KiB).
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]*$/;

/** Text of at most `max` characters, with no NUL or other control character. */
export const boundedText = (max: number) =>
  z.string().max(max).regex(NO_CONTROL_CHARACTERS, 'no control characters');

/** A Stripe object ID: one of its prefixes, then letters, digits and underscores; 255 at most. */
export const stripeId = (prefixes: string) =>
  z
    .string()
    .max(255)
    .regex(
      new RegExp(`^(${prefixes})_[A-Za-z0-9_]+$`),
      `a Stripe ID starting with ${prefixes.replaceAll('|', ' or ')}_`,
    );

/** An amount in minor units: Stripe accepts at most twelve digits (eight for most currencies). */
export const stripeAmount = z.number().int().nonnegative().max(999_999_999_999);

/** A three-letter ISO currency code, lower-cased here once so every comparison downstream agrees. */
export const currencyCode = z
  .string()
  .regex(/^[A-Za-z]{3}$/, 'a three-letter currency code')
  .transform((value) => value.toLowerCase());

/** Stripe metadata: at most 50 keys of up to 40 characters, values of up to 500. */
export const stripeMetadata = z
  .record(boundedText(40), boundedText(500))
  .refine((metadata) => Object.keys(metadata).length <= 50, 'at most 50 metadata keys');

/**
 * The Stripe API versions whose event shapes the schemas here were written for. An event of
 * another version is still processed (a field we read that moved fails its schema and is
 * rejected), but it is logged and counted so an operator notices the endpoint's version changed.
 */
export const SUPPORTED_EVENT_API_VERSIONS: ReadonlySet<string> = new Set(['2025-10-29.clover']);

export const stripeEventSchema = z.object({
  id: stripeId('evt'),
  object: z.literal('event'),
  type: boundedText(100).min(1),
  livemode: z.boolean(),
  created: z.number().int(),
  api_version: boundedText(64).nullish(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type StripeEventEnvelope = z.infer<typeof stripeEventSchema>;

/** Optional text, bounded: Stripe's free-text fields stay under 5,000 characters. */
export const nullableString = boundedText(5000)
  .nullish()
  .transform((value) => value ?? null);

const refId = boundedText(255).regex(/^[A-Za-z0-9_]+$/, 'a Stripe ID');

/** A reference Stripe sends as an ID, or as the object when expanded: the ID either way. */
export const stripeRef = z
  .union([refId, z.object({ id: refId })])
  .nullish()
  .transform((value) => (typeof value === 'string' ? value : (value?.id ?? null)));

export const checkoutSessionSchema = z.object({
  id: stripeId('cs'),
  object: z.literal('checkout.session'),
  mode: z.enum(['payment', 'subscription', 'setup']),
  payment_status: z.enum(['paid', 'unpaid', 'no_payment_required']),
  status: boundedText(100).nullish(),
  amount_total: stripeAmount.nullable(),
  currency: currencyCode.nullish().transform((value) => value ?? null),
  livemode: z.boolean(),
  client_reference_id: boundedText(200)
    .nullish()
    .transform((value) => value ?? null),
  customer: stripeRef,
  customer_email: nullableString,
  customer_details: z.object({ email: nullableString }).nullish(),
  payment_intent: stripeRef,
  subscription: stripeRef,
  metadata: stripeMetadata.nullish(),
});

/** What the purchase workflow is told about a checkout session: plain data, no Stripe types. */
export interface CheckoutSessionSummary {
  id: string;
  mode: 'payment' | 'subscription' | 'setup';
  paymentStatus: 'paid' | 'unpaid' | 'no_payment_required';
  amountTotal: number | null;
  currency: string | null;
  livemode: boolean;
  /**
   * `client_reference_id`: the account the session was opened for. This service sets it when it
   * opens a session, and nobody can change it afterwards, so it names the buyer (together with
   * the checkout snapshot, see `buyerOf` in domain/purchase-rules.ts).
   */
  accountId: string | null;
  /**
   * metadata.accountId as sent: never who is credited. Metadata can be set by whoever holds a
   * Stripe key; an account here other than the buyer's holds the purchase for review. Absent in
   * the input of runs started before it was summarized apart (their `accountId` may be it).
   */
  metadataAccountId?: string | null;
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
    accountId: session.client_reference_id || null,
    metadataAccountId: metadata.accountId || null,
    packId: metadata.packId || null,
    claimedCredits: metadata.credits ?? null,
    customerId: session.customer,
    customerEmail: session.customer_details?.email ?? session.customer_email ?? null,
    paymentIntentId: session.payment_intent,
    subscriptionId: session.subscription,
  };
}
