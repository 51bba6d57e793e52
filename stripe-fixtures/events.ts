import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

/**
 * What every Stripe fixture shares: IDs in Stripe's style, the event envelope of API version
 * 2025-10-29.clover, and signing and delivering an event the way Stripe does. Used by the event
 * sender, the benchmarks and the tests; Stripe's own CLI cannot reach Stripe from an offline
 * machine. The objects themselves are built in ./checkout-sessions, ./subscriptions and ./charges.
 */

export const STRIPE_API_VERSION = '2025-10-29.clover';

/**
 * The webhook secret of the local dev stack (`npm run dev`), the default of the event sender and
 * the benchmark when STRIPE_WEBHOOK_SECRET is unset. A development value, never a real secret.
 */
export const DEV_WEBHOOK_SECRET = 'whsec_dev_change_me';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** An ID in Stripe's style: a prefix and 24 base-62 characters. */
export function stripeId(prefix: string): string {
  const bytes = randomBytes(24);
  let id = '';
  for (const byte of bytes) id += BASE62[byte % 62];
  return `${prefix}_${id}`;
}

/** A Stripe object: its ID, and the rest as Stripe sends it. */
export type StripeObject = { id: string } & Record<string, unknown>;

/** Now, in Unix seconds, as Stripe's timestamps are. */
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export const DAY = 24 * 3600;

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
  livemode: boolean;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  options: { id?: string; livemode?: boolean; created?: number } = {},
): StripeEvent {
  return {
    id: options.id ?? stripeId('evt'),
    object: 'event',
    api_version: STRIPE_API_VERSION,
    created: options.created ?? nowSeconds(),
    data: { object },
    livemode: options.livemode ?? Boolean(object.livemode),
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
}

/** The `Stripe-Signature` header for a payload, made by the official SDK. */
export function signPayload(payload: string, secret: string, timestamp?: number): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(timestamp === undefined ? {} : { timestamp }),
  });
}

/** The request Stripe makes to deliver a payload: POST, its headers, signed with `secret`. */
export function webhookRequest(payload: string, secret: string) {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
      'stripe-signature': signPayload(payload, secret),
    },
    body: payload,
  } satisfies RequestInit;
}

/** POSTs a signed event to a webhook endpoint, as Stripe does. */
export async function deliverEvent(
  url: string,
  event: StripeEvent,
  secret: string,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, webhookRequest(JSON.stringify(event, null, 2), secret));
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: response.status, body };
}
