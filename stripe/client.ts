import Stripe from 'stripe';

/**
 * The Stripe API client, or null when no key is configured (development without Stripe: checkout
 * then answers `stripe_not_configured`). A base URL points the SDK at stripe-mock or a local
 * stand-in; the SDK itself, its retries and its idempotency handling stay the real ones.
 */
/** The API version of every request the service makes to Stripe. */
export const STRIPE_SDK_API_VERSION = '2026-10-28.endive';

export function createStripeClient(config: {
  secretKey: string | undefined;
  apiBaseUrl?: string | undefined;
}): Stripe | null {
  if (!config.secretKey) return null;
  const base = config.apiBaseUrl ? new URL(config.apiBaseUrl) : null;
  return new Stripe(config.secretKey, {
    // Pinned: a new SDK release must not change the shapes of the objects we create and read.
    apiVersion: STRIPE_SDK_API_VERSION,
    // Network failures and 409/429/5xx are retried with the same idempotency key.
    maxNetworkRetries: 2,
    timeout: 20_000,
    ...(base
      ? {
          host: base.hostname,
          port: base.port || (base.protocol === 'https:' ? 443 : 80),
          protocol: base.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}
