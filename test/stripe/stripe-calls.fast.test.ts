import Stripe from 'stripe';
import { loadPackCatalog } from '../../db/catalog/packs';
import { priceCustomCredits } from '../../domain/checkout-pricing';
import {
  createCreditsCheckoutSession,
  creditsCheckoutRequest,
  type CreditsCheckout,
} from '../../stripe/checkout-sessions';
import { createStripeClient, STRIPE_SDK_API_VERSION } from '../../stripe/client';
import { createAccountCustomer } from '../../stripe/customers';
import { ROUTED_STRIPE_EVENT_TYPES } from '../../stripe/event-routes';
import { listStripeEvents } from '../../stripe/events';
import { stripeIdempotencyKey } from '../../stripe/idempotency-keys';
import { listInvoicePaymentsOf } from '../../stripe/invoice-payments';
import { createOffSessionPayment, listSavedCards, retrievePaymentIntent } from '../../stripe/top-up-payments';
import { eventTypeGroups } from '../../workflows/reconciliation/contract';
import { startStripeMock, type StripeMock } from '../support/stripe-mock';

/**
 * Every request the service makes to Stripe, built by the functions the service calls, with the
 * parameters of each branch, sent through the official SDK (as configured in production) to
 * Stripe's own stripe-mock, which checks it against Stripe's OpenAPI description. A request
 * Stripe would refuse fails here, not in production.
 */

const pack = loadPackCatalog().packs.find((candidate) => candidate.id === 'starter')!;
const custom = priceCustomCredits(1_000, {
  unitPriceCents: 9,
  minCredits: 100,
  maxCredits: 100_000,
  currency: 'usd',
  fee: { percentBps: 290, fixedCents: 30 },
});
const urls = {
  successUrl: 'https://app.example.com/billing/ok',
  cancelUrl: 'https://app.example.com/billing',
};
// Account IDs may hold ':' (escaped in our keys) and reach 128 characters: a key past 255.
const longAccountKey = `checkout:${'a%3A'.repeat(32)}:${'~'.repeat(200)}`;

/** The checkout branches of the API (a pack or custom credits, the card saved or not) and a failed top-up's link. */
const checkouts: Array<[string, CreditsCheckout]> = [
  [
    "a pack, the card not saved, no Stripe customer yet, with the client's Idempotency-Key",
    {
      accountId: 'acct_42',
      packId: pack.id,
      credits: pack.credits,
      amountCents: pack.priceCents,
      currency: pack.currency,
      productName: pack.name,
      payer: { email: 'billing@customer.example' },
      saveCard: false,
      ...urls,
      idempotencyKey: 'checkout:acct_42:order-7731',
    },
  ],
  [
    "a pack, the card saved on the account's customer, without an Idempotency-Key",
    {
      accountId: 'acct_42',
      packId: pack.id,
      credits: pack.credits,
      amountCents: pack.priceCents,
      currency: pack.currency,
      productName: pack.name,
      payer: { customerId: 'cus_Q8cN1xkGzT5v' },
      saveCard: true,
      ...urls,
      idempotencyKey: 'checkout:request-17',
    },
  ],
  [
    'custom credits with the card fee passed on, under a key longer than Stripe takes',
    {
      accountId: 'acct_42',
      packId: null,
      credits: 1_000,
      amountCents: custom.amountCents,
      currency: custom.currency,
      productName: '1,000 credits',
      payer: { email: 'billing@customer.example' },
      saveCard: false,
      ...urls,
      idempotencyKey: longAccountKey,
    },
  ],
  [
    "the on-session link of a failed top-up, on the account's customer",
    {
      accountId: 'acct_42',
      packId: pack.id,
      credits: pack.credits,
      amountCents: pack.priceCents,
      currency: pack.currency,
      productName: '100 credits',
      payer: { customerId: 'cus_Q8cN1xkGzT5v' },
      saveCard: true,
      successUrl: 'https://app.example.com/billing',
      cancelUrl: 'https://app.example.com/billing',
      idempotencyKey: 'topup-recovery:topup_1f0c6a2e',
    },
  ],
  [
    'the on-session link of a failed top-up of custom credits, with no customer on record',
    {
      accountId: 'acct_42',
      packId: null,
      credits: 2_500,
      amountCents: 22_500,
      currency: 'usd',
      productName: '2,500 credits',
      payer: null,
      saveCard: true,
      successUrl: 'https://app.example.com/billing',
      cancelUrl: 'https://app.example.com/billing',
      idempotencyKey: 'topup-recovery:topup_1f0c6a2e',
    },
  ],
];

describe("the service's requests to Stripe, against stripe-mock", () => {
  let mock: StripeMock;
  let stripe: Stripe;
  const requests: Stripe.RequestEvent[] = [];
  const responses: Stripe.ResponseEvent[] = [];

  beforeAll(async () => {
    mock = await startStripeMock();
    stripe = createStripeClient({ secretKey: 'sk_test_contract0123456789', apiBaseUrl: mock.url })!;
    // The SDK emits both for every request; its typings leave `on` untyped.
    const events = stripe as unknown as {
      on(name: 'request', listener: (event: Stripe.RequestEvent) => void): void;
      on(name: 'response', listener: (event: Stripe.ResponseEvent) => void): void;
    };
    events.on('request', (event) => requests.push(event));
    events.on('response', (event) => responses.push(event));
  });
  afterAll(async () => {
    await mock?.stop();
  });

  /** The last request as the SDK sent it (API version, idempotency key) and as stripe-mock answered it. */
  function lastExchange() {
    const request = requests[requests.length - 1];
    const response = responses[responses.length - 1];
    const url = new URL(response?.path ?? '/', 'http://stripe.invalid');
    return {
      method: response?.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: response?.status,
      apiVersion: request?.api_version,
      idempotencyKey: response?.idempotency_key ?? null,
    };
  }

  it.each(checkouts)(
    'when a checkout session is created for %s, then stripe-mock accepts it, under our idempotency key',
    async (_branch, checkout) => {
      const session = await createCreditsCheckoutSession(stripe, checkout);
      expect(session.object).toBe('checkout.session');
      expect(lastExchange()).toMatchObject({
        method: 'POST',
        path: '/v1/checkout/sessions',
        status: 200,
        apiVersion: STRIPE_SDK_API_VERSION,
        idempotencyKey: stripeIdempotencyKey(checkout.idempotencyKey),
      });
      expect(lastExchange().idempotencyKey?.length).toBeLessThanOrEqual(255);
    },
  );

  it.each([
    ['an account ID as the API allows it', 'acct_42', 'customer:acct_42:default'],
    [
      'an escaped 128-character account ID (a key past 255)',
      'a:'.repeat(64),
      `customer:${'a%3A'.repeat(64)}:default`,
    ],
    [
      'a non-ASCII account ID (a key a header cannot carry as written)',
      'acct_ünïcødé_中文',
      'customer:acct_ünïcødé_中文:default',
    ],
  ])(
    'when the Stripe customer of %s is created, then stripe-mock accepts it',
    async (_what, accountId, key) => {
      const customer = await createAccountCustomer(stripe, {
        accountId,
        email: 'billing@customer.example',
        idempotencyKey: key,
      });
      expect(customer.object).toBe('customer');
      expect(lastExchange()).toMatchObject({
        method: 'POST',
        path: '/v1/customers',
        status: 200,
        apiVersion: STRIPE_SDK_API_VERSION,
        idempotencyKey: stripeIdempotencyKey(key),
      });
    },
  );

  it("when an automatic top-up looks for the customer's saved card, then stripe-mock accepts the request", async () => {
    const page = await listSavedCards(stripe, 'cus_Q8cN1xkGzT5v');
    expect(page.object).toBe('list');
    expect(lastExchange()).toMatchObject({
      method: 'GET',
      path: '/v1/customers/cus_Q8cN1xkGzT5v/payment_methods',
      query: { type: 'card', limit: '1' },
      status: 200,
      apiVersion: STRIPE_SDK_API_VERSION,
    });
  });

  it('when an automatic top-up charges the saved card off-session, then stripe-mock accepts the payment intent, keyed by the top-up', async () => {
    const intent = await createOffSessionPayment(stripe, {
      topupId: 'topup_1f0c6a2e',
      accountId: 'acct_42',
      customerId: 'cus_Q8cN1xkGzT5v',
      paymentMethodId: 'pm_1PqQ8cN1xkGzT5v',
      amountCents: pack.priceCents,
      currency: pack.currency,
    });
    expect(intent.object).toBe('payment_intent');
    expect(lastExchange()).toMatchObject({
      method: 'POST',
      path: '/v1/payment_intents',
      status: 200,
      apiVersion: STRIPE_SDK_API_VERSION,
      idempotencyKey: 'topup:topup_1f0c6a2e',
    });
  });

  it('when a top-up asks Stripe for its payment intent, then stripe-mock accepts the request', async () => {
    const intent = await retrievePaymentIntent(stripe, 'pi_3PqQ8cN1xkGzT5v');
    expect(intent.object).toBe('payment_intent');
    expect(lastExchange()).toMatchObject({
      method: 'GET',
      path: '/v1/payment_intents/pi_3PqQ8cN1xkGzT5v',
      status: 200,
      apiVersion: STRIPE_SDK_API_VERSION,
    });
  });

  // The routed types in groups as a run reads them, and a full group (Stripe's limit of 20 types).
  const groups = eventTypeGroups(ROUTED_STRIPE_EVENT_TYPES);
  const fullGroup = eventTypeGroups([
    ...ROUTED_STRIPE_EVENT_TYPES,
    ...['customer.created', 'customer.updated', 'invoice.created', 'invoice.finalized', 'charge.succeeded'],
  ])[0]!;
  const eventQueries: Array<[string, string[], string | null, number]> = [
    ...groups.flatMap((types, group): Array<[string, string[], string | null, number]> => {
      const name = `type group ${group + 1} of ${groups.length} (${types.length} types)`;
      return [
        [`${name}, its first page of 100`, types, null, 100],
        [`${name}, a later page of 100`, types, 'evt_1PqQ8cN1xkGzT5v', 100],
        [`${name}, a later page of 2`, types, 'evt_1PqQ8cN1xkGzT5v', 2],
      ];
    }),
    [`a full group of ${fullGroup.length} types, a page of 1`, fullGroup, null, 1],
  ];
  it.each(eventQueries)(
    'when reconciliation lists Stripe events for %s, then stripe-mock accepts the request',
    async (_what, types, startingAfter, limit) => {
      expect(types.length).toBeLessThanOrEqual(20);
      const now = Math.floor(Date.now() / 1000);
      const page = await listStripeEvents(stripe, {
        types,
        fromSeconds: now - 3600,
        untilSeconds: now,
        startingAfter,
        limit,
      });
      expect(page.object).toBe('list');
      const exchange = lastExchange();
      expect(exchange).toMatchObject({
        method: 'GET',
        path: '/v1/events',
        status: 200,
        apiVersion: STRIPE_SDK_API_VERSION,
      });
      expect(exchange.query).toEqual({
        ...Object.fromEntries(types.map((type, index) => [`types[${index}]`, type])),
        'created[gte]': String(now - 3600),
        'created[lt]': String(now),
        limit: String(limit),
        ...(startingAfter ? { starting_after: startingAfter } : {}),
      });
    },
  );

  it('when a refund asks which invoice a payment intent paid, then stripe-mock accepts the request', async () => {
    const page = await listInvoicePaymentsOf(stripe, 'pi_3PqQ8cN1xkGzT5v');
    expect(page.object).toBe('list');
    expect(lastExchange()).toMatchObject({
      method: 'GET',
      path: '/v1/invoice_payments',
      query: {
        'payment[type]': 'payment_intent',
        'payment[payment_intent]': 'pi_3PqQ8cN1xkGzT5v',
        limit: '1',
      },
      status: 200,
      apiVersion: STRIPE_SDK_API_VERSION,
    });
  });

  it.each([
    ['a parameter Stripe does not know', (params: Record<string, unknown>) => ({ ...params, credits: 100 })],
    [
      'an amount of the wrong type',
      (params: Record<string, unknown>) => {
        const [item] = params.line_items as Array<{ price_data: Record<string, unknown> }>;
        return {
          ...params,
          line_items: [{ ...item, price_data: { ...item!.price_data, unit_amount: 'nine' } }],
        };
      },
    ],
  ])(
    'when a checkout request carries %s, then stripe-mock refuses it (a mock that accepted anything would prove nothing)',
    async (_what, spoil) => {
      const { params, options } = creditsCheckoutRequest(checkouts[0]![1]);
      const wrong = spoil(
        params as unknown as Record<string, unknown>,
      ) as unknown as Stripe.Checkout.SessionCreateParams;
      await expect(stripe.checkout.sessions.create(wrong, options)).rejects.toBeInstanceOf(
        Stripe.errors.StripeInvalidRequestError,
      );
      expect(lastExchange()).toMatchObject({ path: '/v1/checkout/sessions', status: 400 });
    },
  );
});
