import { randomUUID } from 'node:crypto';
import { reviseRevocation } from '../../credits/grants';
import { checkedBalance, grantDirectly } from '../support/billing';
import { ADMIN_API_KEY, startHarness, type Harness } from '../support/harness';
import { StripeStandIn } from '../support/stripe-stand-in';

/**
 * A replay (the same request again, with its idempotency key) answers exactly as the first answer
 * did, status and body, whatever happened since, and says so with `Idempotent-Replayed: true`
 * (Stripe's convention); a first answer has no such header. Every route that takes a key.
 */
describe('idempotent replays', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness({
      worker: false,
      configOverrides: {
        STRIPE_SECRET_KEY: 'sk_test_standin0123456789',
        STRIPE_API_BASE_URL: stripe.url,
        CHECKOUT_ALLOWED_REDIRECT_HOSTS: 'app.example.com',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await stripe?.stop();
  });

  interface Answer {
    status: number;
    body: any;
    replayed: string | null;
  }

  async function send(method: string, path: string, body: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${h.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_API_KEY}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const answer: Answer = {
      status: response.status,
      body: await response.json(),
      replayed: response.headers.get('idempotent-replayed'),
    };
    return answer;
  }

  /** The first answer and its replay are the same answer; only the replay says it is one. */
  function expectReplayOf(replay: Answer, first: Answer) {
    expect(first.replayed).toBeNull();
    expect(replay).toEqual({ status: first.status, body: first.body, replayed: 'true' });
  }

  const funded = async (credits: number) => {
    const account = await h.newAccount();
    const { grant } = await grantDirectly(h.sql, account.id, { key: 'funds', amount: credits });
    return { ...account, grant };
  };

  it('when a debit is replayed after other debits moved the balance, then 201 with its first body and Idempotent-Replayed: true', async () => {
    const account = await funded(100);
    const debit = { amount: 30, idempotencyKey: `job-${randomUUID()}`, reason: 'render' };
    const first = await send('POST', `/v1/accounts/${account.id}/debits`, debit);
    expect(first).toMatchObject({ status: 201, body: { balance: 70 } });
    await send('POST', `/v1/accounts/${account.id}/debits`, {
      ...debit,
      idempotencyKey: `job-${randomUUID()}`,
    });
    expectReplayOf(await send('POST', `/v1/accounts/${account.id}/debits`, debit), first);
    expect(await checkedBalance(h, account.id)).toBe(40);
  });

  it('when a grant is replayed after it was spent from and voided, then 201 with the grant as it was created and Idempotent-Replayed: true', async () => {
    const account = await h.newAccount();
    const grant = {
      amount: 50,
      category: 'paid',
      reason: 'goodwill',
      idempotencyKey: `promo-${randomUUID()}`,
    };
    const first = await send('POST', `/v1/accounts/${account.id}/grants`, grant);
    expect(first).toMatchObject({ status: 201, body: { amount: 50, remaining: 50, status: 'live' } });
    await send('POST', `/v1/accounts/${account.id}/debits`, {
      amount: 20,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'render',
    });
    const voided = await send('POST', `/v1/accounts/${account.id}/grants/${first.body.id as number}/void`, {
      reason: 'granted twice',
    });
    expect(voided.body).toMatchObject({ remaining: 0, status: 'voided' });
    expectReplayOf(await send('POST', `/v1/accounts/${account.id}/grants`, grant), first);
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  it('when a grant that repaid a debt at once is replayed, then its first answer comes back, with what remained of it then', async () => {
    const account = await funded(100);
    await send('POST', `/v1/accounts/${account.id}/debits`, {
      amount: 80,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'render',
    });
    // A refund of the whole grant after 80 of it were spent: 20 taken back, 80 owed.
    await h.sql.begin((tx) =>
      reviseRevocation(tx, account.grant.id, 100, {
        businessKey: `test:refund:${randomUUID()}`,
        kind: 'refund',
        reason: 'refunded',
      }),
    );
    const grant = {
      amount: 100,
      category: 'paid',
      reason: 'top-up',
      idempotencyKey: `manual-${randomUUID()}`,
    };
    const first = await send('POST', `/v1/accounts/${account.id}/grants`, grant);
    expect(first).toMatchObject({ status: 201, body: { amount: 100, remaining: 20, status: 'live' } });
    await send('POST', `/v1/accounts/${account.id}/debits`, {
      amount: 20,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'render',
    });
    expectReplayOf(await send('POST', `/v1/accounts/${account.id}/grants`, grant), first);
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  it('when a reservation is replayed after it was captured, then 201 with the hold as it was made and Idempotent-Replayed: true', async () => {
    const account = await funded(100);
    const hold = { amount: 40, ttlSeconds: 600, idempotencyKey: `hold-${randomUUID()}` };
    const first = await send('POST', `/v1/accounts/${account.id}/reservations`, hold);
    expect(first).toMatchObject({ status: 201, body: { amount: 40, status: 'held', captured: null } });
    const captured = await send(
      'POST',
      `/v1/accounts/${account.id}/reservations/${first.body.id as string}/capture`,
      { amount: 25, reason: 'render' },
    );
    expect(captured).toMatchObject({
      status: 201,
      body: { status: 'captured', captured: 25 },
      replayed: null,
    });
    expectReplayOf(await send('POST', `/v1/accounts/${account.id}/reservations`, hold), first);
    expect(await checkedBalance(h, account.id)).toBe(75);
  });

  it('when a capture is replayed after other debits, then 201 with its first body and Idempotent-Replayed: true', async () => {
    const account = await funded(100);
    const held = await send('POST', `/v1/accounts/${account.id}/reservations`, {
      amount: 40,
      ttlSeconds: 600,
      idempotencyKey: `hold-${randomUUID()}`,
    });
    const capture = `/v1/accounts/${account.id}/reservations/${held.body.id as string}/capture`;
    const first = await send('POST', capture, { amount: 25, reason: 'render' });
    expect(first).toMatchObject({ status: 201, body: { captured: 25, balance: 75 } });
    await send('POST', `/v1/accounts/${account.id}/debits`, {
      amount: 5,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'render',
    });
    expectReplayOf(await send('POST', capture, { amount: 25, reason: 'render' }), first);
    expect(await checkedBalance(h, account.id)).toBe(70);
  });

  it('when a checkout session is replayed with its Idempotency-Key, then 201 with the same session and Idempotent-Replayed: true', async () => {
    const account = await h.newAccount();
    const body = {
      accountId: account.id,
      packId: 'starter',
      successUrl: 'https://app.example.com/billing/success',
      cancelUrl: 'https://app.example.com/billing',
    };
    const key = { 'idempotency-key': `order-${randomUUID()}` };
    const first = await send('POST', '/v1/checkout/sessions', body, key);
    expect(first).toMatchObject({ status: 201, body: { credits: 100 } });
    expectReplayOf(await send('POST', '/v1/checkout/sessions', body, key), first);
    // Without a key, each request is a new session: never a replay.
    const unkeyed = await send('POST', '/v1/checkout/sessions', body);
    expect(unkeyed).toMatchObject({ status: 201, replayed: null });
    expect(unkeyed.body.id).not.toBe(first.body.id);
  });

  it('when the same debit is sent 20 times at once, then one is the first answer, 19 are its replays, and one debit is made', async () => {
    const account = await funded(100);
    const debit = { amount: 10, idempotencyKey: `job-${randomUUID()}`, reason: 'render' };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => send('POST', `/v1/accounts/${account.id}/debits`, debit)),
    );
    const first = answers.filter((answer) => answer.replayed === null);
    expect(first).toHaveLength(1);
    for (const answer of answers) {
      expect({ status: answer.status, body: answer.body }).toEqual({ status: 201, body: first[0]?.body });
    }
    expect(await checkedBalance(h, account.id)).toBe(90);
  });

  it('when a grant, reservation or checkout key comes back with other parameters, then 409 names what it was first used for', async () => {
    const account = await funded(100);
    const grant = { amount: 5, reason: 'welcome', idempotencyKey: `promo-${randomUUID()}` };
    const granted = await send('POST', `/v1/accounts/${account.id}/grants`, grant);
    const regrant = await send('POST', `/v1/accounts/${account.id}/grants`, { ...grant, reason: 'again' });
    expect(regrant).toMatchObject({
      status: 409,
      replayed: null,
      body: {
        error: {
          code: 'idempotency_key_reused',
          message: expect.stringContaining(`grant ${granted.body.id as number}`),
          details: {
            firstUsedAt: granted.body.createdAt,
            grantId: granted.body.id,
            amount: 5,
            category: 'promotional',
            reasonMatches: false,
          },
        },
      },
    });

    const hold = { amount: 10, ttlSeconds: 600, idempotencyKey: `hold-${randomUUID()}` };
    const held = await send('POST', `/v1/accounts/${account.id}/reservations`, hold);
    const rehold = await send('POST', `/v1/accounts/${account.id}/reservations`, { ...hold, ttlSeconds: 60 });
    expect(rehold).toMatchObject({
      status: 409,
      body: {
        error: {
          code: 'idempotency_key_reused',
          details: {
            firstUsedAt: held.body.createdAt,
            reservationId: held.body.id,
            amount: 10,
            ttlSeconds: 600,
          },
        },
      },
    });

    const checkout = {
      accountId: account.id,
      packId: 'starter',
      successUrl: 'https://app.example.com/billing/success',
      cancelUrl: 'https://app.example.com/billing',
    };
    const key = { 'idempotency-key': `order-${randomUUID()}` };
    const session = await send('POST', '/v1/checkout/sessions', checkout, key);
    const other = await send('POST', '/v1/checkout/sessions', { ...checkout, packId: 'growth' }, key);
    expect(other).toMatchObject({
      status: 409,
      body: {
        error: {
          code: 'idempotency_key_reused',
          message: expect.stringContaining(session.body.id as string),
          details: { checkoutSessionId: session.body.id, credits: 100 },
        },
      },
    });
    expect(await checkedBalance(h, account.id)).toBe(105);
  });
});
