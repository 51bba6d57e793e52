import { createHash } from 'node:crypto';

/** The longest Idempotency-Key Stripe accepts. */
export const STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH = 255;

// A key Stripe takes as we wrote it: visible ASCII only, so that it travels in an HTTP header
// unchanged (Node refuses characters past U+00FF there and sends U+0080–U+00FF as single bytes).
const SENDABLE = /^[\x21-\x7e]+$/;
// What a digest looks like: a key of this shape is digested too, so that no key sent as written
// can ever equal the digest of another.
const DIGEST_SHAPE = /^(?:[a-z][a-z0-9-]{0,31}:)?sha256:[0-9a-f]{64}$/;
const PURPOSE = /^[a-z][a-z0-9-]{0,31}(?=:)/;

/**
 * The Idempotency-Key of a Stripe write, from one of our own keys (`<purpose>:<our IDs>`, never
 * a clock or a random number, so that a retry is the same request). A key Stripe accepts as it is
 * goes unchanged; a longer one, or one with characters a header cannot carry, is sent as
 * `<purpose>:sha256:<hex digest of its UTF-8 bytes>`: still ours, still one per key, and
 * recognisable in Stripe's dashboard by its purpose.
 */
export function stripeIdempotencyKey(key: string): string {
  const sendable =
    key.length <= STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH && SENDABLE.test(key) && !DIGEST_SHAPE.test(key);
  if (sendable) return key;
  const digest = createHash('sha256').update(key, 'utf8').digest('hex');
  const purpose = PURPOSE.exec(key)?.[0];
  return purpose ? `${purpose}:sha256:${digest}` : `sha256:${digest}`;
}
