import { createHash } from 'node:crypto';
import { STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH, stripeIdempotencyKey } from '../../stripe/idempotency-keys';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
/** A key of exactly `length` characters with our `<purpose>:` in front. */
const keyOf = (length: number, purpose = 'checkout', fill = 'k') => {
  const head = `${purpose}:acct_42:`;
  return head + fill.repeat(length - head.length);
};

describe('Stripe idempotency keys', () => {
  it('when our key has 254 or 255 visible ASCII characters, then Stripe receives it unchanged', () => {
    expect(STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH).toBe(255);
    for (const length of [1, 254, 255]) {
      const key = length === 1 ? 'k' : keyOf(length);
      expect(key).toHaveLength(length);
      expect(stripeIdempotencyKey(key)).toBe(key);
    }
  });

  it('when our key has 256 characters or more, then Stripe receives its purpose and the SHA-256 of the whole key', () => {
    for (const length of [256, 257, 1_000, 100_000]) {
      const key = keyOf(length);
      const sent = stripeIdempotencyKey(key);
      expect(sent).toBe(`checkout:sha256:${sha256(key)}`);
      expect(sent.length).toBeLessThanOrEqual(STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH);
    }
    expect(stripeIdempotencyKey(keyOf(300, 'topup-recovery'))).toMatch(
      /^topup-recovery:sha256:[0-9a-f]{64}$/,
    );
  });

  it('when two long keys differ only in their last character, then Stripe receives two different keys, each the same on every retry', () => {
    const key = keyOf(300);
    const other = `${key.slice(0, -1)}!`;
    expect(stripeIdempotencyKey(key)).not.toBe(stripeIdempotencyKey(other));
    expect(stripeIdempotencyKey(key)).toBe(stripeIdempotencyKey(key));
  });

  it('when our key holds non-ASCII characters (which an HTTP header cannot carry as written), then it is sent as the digest of its UTF-8 bytes, even when short', () => {
    for (const key of [
      'customer:acct_ünïcødé:default',
      'customer:acct_中文:default',
      'topup:😀',
      'customer:café:x',
    ]) {
      const sent = stripeIdempotencyKey(key);
      expect(sent).toMatch(/^(customer|topup):sha256:[0-9a-f]{64}$/);
      expect(sent).toBe(`${key.split(':')[0]}:sha256:${sha256(key)}`);
      expect(sent).toMatch(/^[\x21-\x7e]+$/);
    }
    // 255 characters that are 510 UTF-8 bytes: still digested, never cut.
    const twoByte = keyOf(255, 'checkout', 'é');
    expect(twoByte).toHaveLength(255);
    expect(stripeIdempotencyKey(twoByte)).toBe(`checkout:sha256:${sha256(twoByte)}`);
  });

  it('when our key holds a space or a control character, then it is sent as its digest, never trimmed by a proxy into another key', () => {
    expect(stripeIdempotencyKey('checkout:acct_42:order 1')).toMatch(/^checkout:sha256:[0-9a-f]{64}$/);
    expect(stripeIdempotencyKey('checkout:acct_42:order-1 ')).not.toBe('checkout:acct_42:order-1');
    expect(stripeIdempotencyKey('checkout:acct_42:\t')).toMatch(/^checkout:sha256:/);
  });

  it('when a short key already looks like a digest, then it is digested too, so no key sent as written equals the digest of another', () => {
    const long = keyOf(400);
    const digestOfLong = stripeIdempotencyKey(long);
    // A key a client could spell: account "sha256", idempotency key of 64 hex characters.
    expect(stripeIdempotencyKey(digestOfLong)).not.toBe(digestOfLong);
    expect(stripeIdempotencyKey(digestOfLong)).toBe(`checkout:sha256:${sha256(digestOfLong)}`);
    const bare = `sha256:${sha256('x')}`;
    expect(stripeIdempotencyKey(bare)).toBe(`sha256:sha256:${sha256(bare)}`);
  });

  it('when a long key has no purpose in front, then it is sent as sha256:<digest>', () => {
    const key = `:${'x'.repeat(300)}`;
    expect(stripeIdempotencyKey(key)).toBe(`sha256:${sha256(key)}`);
  });
});
