import { createHash, randomUUID } from 'node:crypto';
import { statusQuery } from '../../workflows/purchases/contract';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { balanceOf, ledgerRowsFor } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { StripeStandIn } from '../support/stripe-stand-in';
import { waitUntil } from '../support/wait';

const SUCCESS_URL = 'https://app.example.com/billing/success';
const CANCEL_URL = 'https://app.example.com/billing';

describe('POST /v1/checkout/sessions', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  let withFee: Harness;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    const stripeConfig = {
      STRIPE_SECRET_KEY: 'sk_test_standin0123456789',
      STRIPE_API_BASE_URL: stripe.url,
      CHECKOUT_ALLOWED_REDIRECT_HOSTS: 'app.example.com',
      CUSTOM_CREDITS_UNIT_PRICE_CENTS: '9',
      CUSTOM_CREDITS_MIN: '100',
      CUSTOM_CREDITS_MAX: '10000',
    };
    h = await startHarness({ configOverrides: stripeConfig });
    withFee = await startHarness({
      worker: false,
      configOverrides: {
        ...stripeConfig,
        CHECKOUT_PASS_CARD_FEE: 'true',
        CARD_FEE_PERCENT: '2.9',
        CARD_FEE_FIXED_CENTS: '30',
      },
    });
  });
  afterAll(async () => {
    await withFee?.close();
    await h?.close();
    await stripe?.stop();
  });

  const checkout = (harness: Harness, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${harness.baseUrl}/v1/checkout/sessions`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test_api_key_0123456789abcdef',
        'content-type': 'application/json',
        ...headers,
      },
      body: JSON.stringify({ successUrl: SUCCESS_URL, cancelUrl: CANCEL_URL, ...body }),
    }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));

  async function snapshotOf(id: string) {
    const [row] =
      await h.sql`SELECT account_id, pack_id, credits, amount_cents, currency FROM checkout_sessions WHERE id = ${id}`;
    return row ?? null;
  }

  it('when a pack is bought, then Stripe receives the catalog price, the account and an idempotency key, and the sale is snapshotted', async () => {
    const account = await h.newAccount();
    const response = await checkout(
      h,
      { accountId: account.id, packId: 'growth' },
      { 'idempotency-key': 'order-1' },
    );
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      id: expect.stringMatching(/^cs_test_/),
      url: expect.stringContaining('https://checkout.stripe.com/'),
      credits: 550,
      amountCents: 4500,
      currency: 'usd',
    });
    const [request] = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === account.id);
    expect(request?.idempotencyKey).toBe(`checkout:${account.id}:order-1`);
    expect(request?.form).toMatchObject({
      mode: 'payment',
      client_reference_id: account.id,
      customer_email: account.email,
      'metadata[accountId]': account.id,
      'metadata[packId]': 'growth',
      'metadata[credits]': '550',
      'metadata[purpose]': 'credits',
      'payment_intent_data[metadata][accountId]': account.id,
      'line_items[0][quantity]': '1',
      'line_items[0][price_data][currency]': 'usd',
      'line_items[0][price_data][unit_amount]': '4500',
      'line_items[0][price_data][product_data][name]': 'Growth pack',
      success_url: SUCCESS_URL,
      cancel_url: CANCEL_URL,
    });
    expect(await snapshotOf(response.body.id)).toEqual({
      account_id: account.id,
      pack_id: 'growth',
      credits: '550',
      amount_cents: '4500',
      currency: 'usd',
    });
  });

  it('when no Idempotency-Key is sent, then each request still carries its own stable key', async () => {
    const account = await h.newAccount();
    const first = await checkout(h, { accountId: account.id, packId: 'starter' });
    const second = await checkout(h, { accountId: account.id, packId: 'starter' });
    expect(first.body.id).not.toBe(second.body.id);
    const keys = stripe
      .checkoutCreations()
      .filter((r) => r.form.client_reference_id === account.id)
      .map((r) => r.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys.every((key) => /^checkout:request-\d+$/.test(key ?? ''))).toBe(true);
    expect(new Set(keys).size).toBe(2);
  });

  it('when custom credits are bought, then the configured unit price applies', async () => {
    const account = await h.newAccount();
    const response = await checkout(h, { accountId: account.id, credits: 250 });
    expect(response).toEqual({
      status: 201,
      body: expect.objectContaining({ credits: 250, amountCents: 2250, currency: 'usd' }),
    });
    const [request] = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === account.id);
    expect(request?.form).toMatchObject({
      'metadata[credits]': '250',
      'line_items[0][price_data][unit_amount]': '2250',
    });
    expect(request?.form['metadata[packId]']).toBeUndefined();
  });

  it('when the card fee is passed on, then the amount is grossed up to the cent', async () => {
    const account = await withFee.newAccount();
    const response = await checkout(withFee, { accountId: account.id, credits: 100 });
    // 100 × 9 = 900 net; (900 + 30) / 0.971 = 957.77… → 958
    expect(response.body).toMatchObject({ credits: 100, amountCents: 958 });
  });

  it('when the same Idempotency-Key is replayed, then the same session comes back and Stripe is asked once', async () => {
    const account = await h.newAccount();
    const key = `order-${randomUUID()}`;
    const first = await checkout(h, { accountId: account.id, packId: 'starter' }, { 'idempotency-key': key });
    const again = await checkout(h, { accountId: account.id, packId: 'starter' }, { 'idempotency-key': key });
    expect(again).toEqual(first);
    expect(stripe.checkoutCreations().filter((r) => r.form.client_reference_id === account.id)).toHaveLength(
      1,
    );

    const other = await checkout(h, { accountId: account.id, packId: 'scale' }, { 'idempotency-key': key });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });

  it('when Stripe refuses, then 502 with Stripe’s error code and nothing is stored as sold', async () => {
    const account = await h.newAccount();
    stripe.failNext(400, {
      type: 'invalid_request_error',
      code: 'parameter_invalid_integer',
      message: 'Invalid integer',
    });
    const response = await checkout(h, { accountId: account.id, packId: 'starter' });
    expect(response.status).toBe(502);
    expect(response.body.error).toMatchObject({
      code: 'stripe_error',
      details: { stripeCode: 'parameter_invalid_integer' },
    });
    const [{ count }] =
      (await h.sql`SELECT count(*)::int AS count FROM checkout_sessions WHERE account_id = ${account.id}`) as any;
    expect(count).toBe(0);
  });

  it.each([
    [
      'a redirect host that is not allowed',
      422,
      'redirect_url_not_allowed',
      { successUrl: 'https://evil.example/steal' },
    ],
    ['an unknown pack', 404, 'pack_not_found', { packId: 'free-money' }],
    ['an unknown account', 404, 'account_not_found', { accountId: 'acct_nobody' }],
    ['too few custom credits', 400, 'invalid_request', { packId: undefined, credits: 99 }],
    ['too many custom credits', 400, 'invalid_request', { packId: undefined, credits: 10_001 }],
    ['both a pack and credits', 400, 'invalid_request', { credits: 500 }],
    ['an unknown field', 400, 'invalid_request', { priceCents: 1 }],
    ['a URL that is not a URL', 400, 'invalid_request', { cancelUrl: 'not a url' }],
  ])(
    'when the request has %s, then %i %s and Stripe is not called',
    async (_name, status, code, override) => {
      const account = await h.newAccount();
      const before = stripe.checkoutCreations().length;
      const response = await checkout(h, { accountId: account.id, packId: 'starter', ...override });
      expect(response.status).toBe(status);
      expect(response.body.error.code).toBe(code);
      expect(stripe.checkoutCreations()).toHaveLength(before);
    },
  );

  it('when no Stripe key is configured, then 503 stripe_not_configured', async () => {
    const noStripe = await startHarness({
      worker: false,
      configOverrides: { CHECKOUT_ALLOWED_REDIRECT_HOSTS: 'app.example.com' },
    });
    try {
      const account = await noStripe.newAccount();
      const response = await checkout(noStripe, { accountId: account.id, packId: 'starter' });
      expect(response.status).toBe(503);
      expect(response.body.error.code).toBe('stripe_not_configured');
    } finally {
      await noStripe.close();
    }
  });

  describe('end to end', () => {
    it('when a session created through the API is paid, then its credits are granted; a later price change does not affect it', async () => {
      // A pack of this test's own, so changing its price cannot disturb other tests.
      const packId = `e2e-${randomUUID().slice(0, 8)}`;
      await h.sql`INSERT INTO credit_packs (id, name, credits, price_cents, currency) VALUES (${packId}, 'E2E pack', 300, 2500, 'usd')`;
      const account = await h.newAccount();
      const sold = await checkout(h, { accountId: account.id, packId });
      expect(sold.body).toMatchObject({ credits: 300, amountCents: 2500 });

      // The catalog changes after the session was handed out: more credits, higher price.
      await h.sql`UPDATE credit_packs SET credits = 400, price_cents = 3000 WHERE id = ${packId}`;

      const paid = checkoutSession({
        id: sold.body.id,
        accountId: account.id,
        packId,
        amountTotal: 2500,
        metadata: { credits: '300' },
      });
      const event = stripeEvent('checkout.session.completed', paid);
      expect((await h.deliver(event)).status).toBe(200);
      expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
        stage: 'completed',
        credits: 300,
      });
      expect(await balanceOf(h.sql, account.id)).toBe(300);

      // A new session sells at the new price.
      const newer = await checkout(h, { accountId: account.id, packId });
      expect(newer.body).toMatchObject({ credits: 400, amountCents: 3000 });
    });

    it('when a custom-credits session is paid, then the snapshot decides the credits', async () => {
      const account = await h.newAccount();
      const sold = await checkout(h, { accountId: account.id, credits: 1234 });
      const paid = checkoutSession({
        id: sold.body.id,
        accountId: account.id,
        packId: null,
        amountTotal: sold.body.amountCents,
        metadata: { credits: '1234' },
      });
      const event = stripeEvent('checkout.session.completed', paid);
      await h.deliver(event);
      expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
        stage: 'completed',
        credits: 1234,
      });
      expect(await ledgerRowsFor(h.sql, sold.body.id)).toHaveLength(1);
    });

    it('when a paid session names another account than it was sold to, then it is held', async () => {
      const buyer = await h.newAccount();
      const other = await h.newAccount();
      const sold = await checkout(h, { accountId: buyer.id, packId: 'starter' });
      const paid = checkoutSession({
        id: sold.body.id,
        accountId: other.id,
        packId: 'starter',
        amountTotal: 900,
      });
      const event = stripeEvent('checkout.session.completed', paid);
      await h.deliver(event);
      const handle = h.temporal.workflow.getHandle(event.id);
      const status = await waitUntil(async () => {
        const current = await handle.query(statusQuery);
        return current.stage === 'held_for_review' ? current : null;
      });
      expect(status.reasonCode).toBe('account_mismatch');
      expect(await balanceOf(h.sql, other.id)).toBe(0);
      await handle.terminate('test over');
    });
  });

  describe('checkout idempotency keys: accounts that spell alike, keys at their longest', () => {
    /** A checkout of `packId` for the account under the client's Idempotency-Key `key`. */
    const keyed = (accountId: string, key: string, packId = 'starter') =>
      checkout(h, { accountId, packId }, { 'idempotency-key': key });

    async function longestAccount() {
      // 128 characters, with several ":" so the scoped key grows further when escaped.
      const head = `a:${randomUUID()}:b:c:`;
      const id = head + 'x'.repeat(128 - head.length);
      expect(id).toHaveLength(128);
      const created = await h.api('POST', '/v1/accounts', { id, email: `${randomUUID()}@customers.test` });
      expect(created.status).toBe(201);
      return id;
    }
    const longestKey = () => {
      const head = `k-${randomUUID()}-`;
      return head + '~'.repeat(255 - head.length);
    };

    it('when a 128-character account ID and a 255-character key are replayed, then the same session answers and Stripe sees one creation with a key of at most 255 characters', async () => {
      const accountId = await longestAccount();
      const key = longestKey();
      expect(key).toHaveLength(255);

      const first = await keyed(accountId, key);
      expect(first.status).toBe(201);
      const replay = await keyed(accountId, key);
      expect(replay).toEqual({ status: 201, body: first.body });

      const creations = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === accountId);
      expect(creations).toHaveLength(1);
      const escaped = accountId.replaceAll('%', '%25').replaceAll(':', '%3A');
      const scoped = `checkout:${escaped}:${key}`;
      expect(creations[0]?.idempotencyKey).toBe(
        `checkout:sha256:${createHash('sha256').update(scoped).digest('hex')}`,
      );
      expect((creations[0]?.idempotencyKey ?? '').length).toBeLessThanOrEqual(255);
      const [row] = await h.sql<{ idempotency_key: string; account_id: string }[]>`
        SELECT idempotency_key, account_id FROM checkout_sessions WHERE id = ${first.body.id as string}`;
      expect(row).toEqual({ idempotency_key: scoped, account_id: accountId });
    });

    it('when the same longest key comes with another body, then 409 idempotency_key_reused and Stripe is not asked again', async () => {
      const accountId = await longestAccount();
      const key = longestKey();
      expect((await keyed(accountId, key, 'starter')).status).toBe(201);

      const changed = await keyed(accountId, key, 'growth');
      expect(changed.status).toBe(409);
      expect(changed.body.error.code).toBe('idempotency_key_reused');
      const creations = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === accountId);
      expect(creations).toHaveLength(1);
      const [row] = await h.sql<{ n: string }[]>`
        SELECT count(*)::text AS n FROM checkout_sessions WHERE account_id = ${accountId}`;
      expect(row?.n).toBe('1');
    });

    it('when two longest keys differ only in their last character, then each gets its own session and its own Stripe key', async () => {
      const accountId = await longestAccount();
      const key = longestKey();
      const other = `${key.slice(0, -1)}!`;
      const a = await keyed(accountId, key);
      const b = await keyed(accountId, other);
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.body.id).not.toBe(a.body.id);
      const keys = stripe
        .checkoutCreations()
        .filter((r) => r.form.client_reference_id === accountId)
        .map((r) => r.idempotencyKey);
      expect(new Set(keys).size).toBe(2);
    });

    it('when two accounts send keys that spell the same "<account>:<key>", then each gets its own session, not 409', async () => {
      const base = `acct_${randomUUID()}`;
      // Account IDs may hold ':' (the API allows it): "<base>" + "b:c" and "<base>:b" + "c".
      for (const id of [base, `${base}:b`]) {
        const answer = await h.api('POST', '/v1/accounts', { id, email: `${randomUUID()}@customers.test` });
        expect(answer.status).toBe(201);
      }

      const a = await keyed(base, 'b:c');
      expect(a.status).toBe(201);
      const b = await keyed(`${base}:b`, 'c');
      expect(b.status).toBe(201);
      expect(b.body.id).not.toBe(a.body.id);
      const [row] = await h.sql<{ account_id: string }[]>`
        SELECT account_id FROM checkout_sessions WHERE id = ${b.body.id as string}`;
      expect(row?.account_id).toBe(`${base}:b`);
    });
  });
});
