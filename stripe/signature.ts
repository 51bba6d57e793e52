import Stripe from 'stripe';
import { errors } from '../api/errors';

// Stripe's default: a signed event older than five minutes is refused as a replay.
const TOLERANCE_SECONDS = 300;

/**
 * Verifies the raw body against every configured secret (several during a rotation) with the
 * official SDK, and returns the parsed JSON only once one of them matches.
 */
export function verifyStripeSignature(
  rawBody: Buffer,
  header: string | undefined,
  secrets: readonly string[],
): unknown {
  if (!header) throw errors.missingSignature();
  for (const secret of secrets) {
    try {
      return Stripe.webhooks.constructEvent(rawBody, header, secret, TOLERANCE_SECONDS);
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) continue;
      // The signature matched, so the bytes are Stripe's, but they are not JSON.
      if (error instanceof SyntaxError) throw errors.malformedJson();
      throw error;
    }
  }
  throw isStale(header) ? errors.signatureExpired() : errors.invalidSignature();
}

function isStale(header: string): boolean {
  const timestamp = Number(/(?:^|,)t=(\d+)/.exec(header)?.[1]);
  return Number.isFinite(timestamp) && Math.abs(Date.now() / 1000 - timestamp) > TOLERANCE_SECONDS;
}
