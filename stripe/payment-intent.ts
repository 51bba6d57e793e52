import { z } from 'zod';
import { boundedText, currencyCode, stripeAmount, stripeId, stripeMetadata, stripeRef } from './objects';

/** The parts of a PaymentIntent a top-up reads, from an event or from the API alike. */
export const paymentIntentSchema = z.object({
  id: stripeId('pi'),
  object: z.literal('payment_intent'),
  status: boundedText(100),
  amount: stripeAmount,
  amount_received: stripeAmount.nullish().transform((value) => value ?? 0),
  currency: currencyCode,
  livemode: z.boolean(),
  customer: stripeRef,
  metadata: stripeMetadata.nullish(),
  last_payment_error: z
    .object({
      code: boundedText(100).nullish(),
      decline_code: boundedText(100).nullish(),
      message: boundedText(5000).nullish(),
    })
    .nullish(),
});

export interface PaymentIntentSummary {
  id: string;
  status: string;
  amount: number;
  amountReceived: number;
  currency: string;
  livemode: boolean;
  customerId: string | null;
  /** metadata.topupId and metadata.accountId, which our own request set. */
  topupId: string | null;
  accountId: string | null;
  /** Why the last attempt failed: Stripe's error code (`authentication_required`, `card_declined`…). */
  failureCode: string | null;
  failureMessage: string | null;
}

/** A top-up's ID as our requests write it, and the only form routed to a top-up workflow. */
export const topupIdSchema = z.string().regex(/^topup_[0-9]{1,18}$/);

export function summarizePaymentIntent(object: unknown): PaymentIntentSummary {
  const intent = paymentIntentSchema.parse(object);
  const metadata = intent.metadata ?? {};
  const error = intent.last_payment_error;
  return {
    id: intent.id,
    status: intent.status,
    amount: intent.amount,
    amountReceived: intent.amount_received,
    currency: intent.currency,
    livemode: intent.livemode,
    customerId: intent.customer,
    topupId: topupIdSchema.safeParse(metadata.topupId).success ? (metadata.topupId ?? null) : null,
    accountId: metadata.accountId || null,
    failureCode: error?.code ?? error?.decline_code ?? null,
    failureMessage: error?.message ?? null,
  };
}
