import { randomUUID } from 'node:crypto';
import {
  createCreditsClient,
  CreditsApiError,
  ok,
  type CreditsClient,
  type ErrorCode,
  type Schemas,
} from '../../client/index';
import { ADMIN_API_KEY, API_KEY, startHarness, type Harness } from '../support/harness';
import { StripeStandIn } from '../support/stripe-stand-in';

// The API seen as a customer sees it: only over HTTP, only through the typed client
// (client/index.ts) generated from the API's own document. Every answer below is the type the
// document promises; what would not compile against it is what a client could not send.
describe('the typed client, against the running API', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  let credits: CreditsClient;
  let admin: CreditsClient;
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
    credits = createCreditsClient({ baseUrl: h.baseUrl, apiKey: API_KEY });
    admin = createCreditsClient({ baseUrl: h.baseUrl, apiKey: ADMIN_API_KEY });
  });
  afterAll(async () => {
    await h?.close();
    await stripe?.stop();
  });

  const newAccount = () =>
    ok(
      credits.POST('/v1/accounts', {
        body: { id: `acct_${randomUUID()}`, email: `${randomUUID()}@example.com` },
      }),
    );

  it('when an account is created and read back, then both answers are the Account the document describes', async () => {
    const id = `acct_${randomUUID()}`;
    const created = await credits.POST('/v1/accounts', { body: { id, email: 'ada@example.com' } });
    expect(created.response.status).toBe(201);
    const account: Schemas['Account'] | undefined = created.data;
    expect(account).toEqual({
      id,
      email: 'ada@example.com',
      balance: 0,
      available: 0,
      held: 0,
      debt: 0,
      credits: { paid: 0, promotional: 0 },
    });

    const read = await ok(credits.GET('/v1/accounts/{id}', { params: { path: { id } } }));
    expect(read).toEqual(account);
  });

  it('when a checkout link is asked for a pack, then a Stripe Checkout session and its URL come back', async () => {
    const account = await newAccount();
    const { data, response } = await credits.POST('/v1/checkout/sessions', {
      params: { header: { 'idempotency-key': `order-${randomUUID()}` } },
      body: {
        accountId: account.id,
        packId: 'growth',
        successUrl: 'https://app.example.com/billing/success',
        cancelUrl: 'https://app.example.com/billing',
      },
    });
    expect(response.status).toBe(201);
    expect(data).toEqual({
      id: expect.stringMatching(/^cs_test_/),
      url: expect.stringContaining('https://checkout.stripe.com/'),
      credits: 550,
      amountCents: 4500,
      currency: 'usd',
    });
  });

  it('when credits are granted, debited, held and captured, then each answer and the ledger say so, and a repeated debit replays', async () => {
    const { id } = await newAccount();
    const path = { id };

    const grant = await ok(
      admin.POST('/v1/accounts/{id}/grants', {
        params: { path },
        body: { amount: 100, category: 'promotional', reason: 'welcome', idempotencyKey: `welcome-${id}` },
      }),
    );
    expect(grant).toMatchObject({ amount: 100, remaining: 100, category: 'promotional', status: 'live' });

    const debitBody = { amount: 30, reason: 'export', idempotencyKey: `export-${id}` };
    const debit = await credits.POST('/v1/accounts/{id}/debits', { params: { path }, body: debitBody });
    expect(debit.response.status).toBe(201);
    expect(debit.data).toEqual({ entryId: expect.any(Number), balance: 70 });
    expect(debit.response.headers.get('Idempotent-Replayed')).toBeNull();
    const again = await credits.POST('/v1/accounts/{id}/debits', { params: { path }, body: debitBody });
    expect(again.response.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.data).toEqual(debit.data);

    const reservation = await ok(
      credits.POST('/v1/accounts/{id}/reservations', {
        params: { path },
        body: { amount: 20, ttlSeconds: 300, idempotencyKey: `job-${id}` },
      }),
    );
    expect(reservation).toMatchObject({ amount: 20, status: 'held', captured: null });
    const held = await ok(credits.GET('/v1/accounts/{id}', { params: { path } }));
    expect({ balance: held.balance, available: held.available, held: held.held }).toEqual({
      balance: 70,
      available: 50,
      held: 20,
    });
    const capture = await ok(
      credits.POST('/v1/accounts/{id}/reservations/{reservationId}/capture', {
        params: { path: { id, reservationId: reservation.id } },
        body: { amount: 15, reason: 'job done' },
      }),
    );
    expect(capture).toMatchObject({ id: reservation.id, status: 'captured', captured: 15, balance: 55 });

    const ledger = await ok(
      credits.GET('/v1/accounts/{id}/ledger', { params: { path, query: { limit: 10 } } }),
    );
    expect(ledger.entries.map(({ delta, balanceAfter }) => ({ delta, balanceAfter }))).toEqual([
      { delta: -15, balanceAfter: 55 },
      { delta: -30, balanceAfter: 70 },
      { delta: 100, balanceAfter: 100 },
    ]);
    expect(ledger.nextCursor).toBeNull();
  });

  it('when a call fails, then the error body carries a code of the closed list, and ok() throws it as a CreditsApiError', async () => {
    const missing = await credits.GET('/v1/accounts/{id}', {
      params: { path: { id: `acct_${randomUUID()}` } },
    });
    expect(missing.response.status).toBe(404);
    const code: ErrorCode | undefined = missing.error?.error.code;
    expect(code).toBe('account_not_found');

    const { id } = await newAccount();
    const overdraft = ok(
      credits.POST('/v1/accounts/{id}/debits', {
        params: { path: { id } },
        body: { amount: 1, reason: 'export', idempotencyKey: `export-${id}` },
      }),
    );
    await expect(overdraft).rejects.toBeInstanceOf(CreditsApiError);
    await expect(overdraft).rejects.toMatchObject({ status: 402, code: 'insufficient_credits' });

    // A key whose role is below the route's: the same typed error, from the role check.
    await expect(
      ok(
        credits.POST('/v1/accounts/{id}/grants', {
          params: { path: { id } },
          body: { amount: 1, category: 'paid', reason: 'nope', idempotencyKey: `grant-${id}` },
        }),
      ),
    ).rejects.toMatchObject({ status: 403, code: 'insufficient_role' });
  });
});
