import { createHmac } from 'node:crypto';

/**
 * How deliveries are signed: Standard Webhooks (https://www.standardwebhooks.com), so that a
 * receiver verifies with an existing library in its language rather than with code of ours.
 *
 * - `webhook-id`: the event's ID (`evt_…`), the same on every attempt and re-send: receivers
 *   deduplicate by it;
 * - `webhook-timestamp`: the attempt's time, in Unix seconds (receivers refuse old ones);
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the endpoint's key,
 *   and a second `v1,…` entry, space-separated, with the key a rotation replaced while it still
 *   signs: a receiver holding either secret verifies.
 */
export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

/** One `v1,` signature of a message with one key. */
export function signatureWith(
  key: Uint8Array,
  message: { id: string; timestamp: number; body: string },
): string {
  const digest = createHmac('sha256', key)
    .update(`${message.id}.${message.timestamp}.${message.body}`, 'utf8')
    .digest('base64');
  return `v1,${digest}`;
}

/** The three headers of a delivery, signed with each key given (the current one first). */
export function standardWebhookHeaders(
  keys: readonly Uint8Array[],
  message: { id: string; timestamp: number; body: string },
): Record<string, string> {
  return {
    [WEBHOOK_ID_HEADER]: message.id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(message.timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: keys.map((key) => signatureWith(key, message)).join(' '),
  };
}
