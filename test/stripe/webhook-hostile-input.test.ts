import { Client } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { randomUUID } from 'node:crypto';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { createSql } from '../../db/client';
import { statusQuery } from '../../workflows/purchases/contract';
import {
  charge,
  checkoutSession,
  deliverEvent,
  signPayload,
  stripeEvent,
  webhookRequest,
  type StripeEvent,
} from '../../stripe/fixtures/index';
import { checkedBalance, deliverAndSettle, ledgerOf } from '../support/billing';
import { startAppWith, startHarness, WEBHOOK_SECRET, type Harness } from '../support/harness';
import { temporalDataConverter } from '../../config/payload-codec';
import { waitUntil } from '../support/wait';

/**
 * Signed events that can never be processed are permanent: stored, answered 2xx, never a 5xx
 * loop nor an activity retried for days. Only a real outage answers 5xx.
 */
describe('hostile or impossible Stripe events', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const rejected = { status: 200, body: { received: true, workflowId: null, status: 'rejected' } };

  async function rejectedRow(eventId: string) {
    const [row] = await h.sql<{ reason_code: string; deliveries: number; payload_excerpt: string }[]>`
      SELECT reason_code, deliveries, payload_excerpt FROM rejected_events WHERE event_id = ${eventId}`;
    return row ?? null;
  }

  async function expectNothingStarted(event: StripeEvent) {
    await expect(h.temporal.workflow.getHandle(event.id).describe()).rejects.toThrow(/not found/i);
  }

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf'])(
    'when the event type is %s, then it is ignored with 200',
    async (type) => {
      const event = stripeEvent(type, { id: 'obj_1', object: 'thing' });
      expect(await h.deliver(event)).toEqual({
        status: 200,
        body: { received: true, workflowId: null, status: 'ignored' },
      });
    },
  );

  it('when a session carries a NUL byte in client_reference_id, then it is rejected, stored once per event, and grants nothing', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({
      accountId: account.id,
      packId: 'starter',
      accountInClientReferenceOnly: true,
    });
    const event = stripeEvent('checkout.session.completed', {
      ...session,
      client_reference_id: `${account.id}\u0000`,
    });
    expect(await h.deliver(event)).toEqual(rejected);
    expect(await h.deliver(event)).toEqual(rejected);
    await expectNothingStarted(event);
    expect(await rejectedRow(event.id)).toMatchObject({ reason_code: 'invalid_object', deliveries: 2 });
    expect((await rejectedRow(event.id))?.payload_excerpt).not.toContain('\u0000');
    expect(await checkedBalance(h, account.id)).toBe(0);
    const listed = await h.api('GET', '/v1/rejected-events?limit=100');
    expect(listed.status).toBe(200);
    expect(listed.body.events).toContainEqual(
      expect.objectContaining({ eventId: event.id, eventType: 'checkout.session.completed', deliveries: 2 }),
    );
  });

  it.each([
    [
      'a 20,000-character account reference',
      { metadata: { accountId: 'a'.repeat(20_000), packId: 'starter' } },
    ],
    ['a session ID of 300 characters', { id: `cs_test_${'x'.repeat(300)}` }],
    ['an amount past Stripe’s limit', { amount_total: 10 ** 13 }],
    [
      '51 metadata keys',
      { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) },
    ],
    ['a currency that is not a code', { currency: 'dollars' }],
  ])('when a signed session has %s, then it is rejected with 200, not retried', async (_what, change) => {
    const account = await h.newAccount();
    const event = stripeEvent('checkout.session.completed', {
      ...checkoutSession({ accountId: account.id, packId: 'starter' }),
      ...change,
    });
    expect(await h.deliver(event)).toEqual(rejected);
    await expectNothingStarted(event);
    expect(await rejectedRow(event.id)).toMatchObject({ reason_code: 'invalid_object', deliveries: 1 });
  });

  it('when an event of another API version arrives, then it is processed and counted', async () => {
    const account = await h.newAccount();
    const event = {
      ...stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter' }),
      ),
      api_version: '2099-01-01.future',
    };
    const [result] = await deliverAndSettle(h, [event]);
    expect(result).toMatchObject({ stage: 'completed' });
    const metrics = await fetch(`${h.baseUrl}/metrics`).then((response) => response.text());
    expect(metrics).toMatch(
      /billing_webhook_events_unknown_api_version_total\{api_version="2099-01-01.future"\} 1/,
    );
  });

  it('when a session is paid in "USD", then the currency is stored lowercase and a refund in "usd" takes the credits back', async () => {
    const account = await h.newAccount();
    const base = checkoutSession({ accountId: account.id, packId: 'starter' });
    const session = { ...base, currency: 'USD' };
    await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
    expect(await checkedBalance(h, account.id)).toBe(100);
    const [purchase] = await h.sql<
      { currency: string }[]
    >`SELECT currency FROM purchases WHERE id = ${base.id as string}`;
    expect(purchase?.currency).toBe('usd');
    const refund = charge({
      paymentIntentId: base.payment_intent as string,
      amount: 900,
      amountRefunded: 900,
      currency: 'usd',
    });
    const [result] = await deliverAndSettle(h, [stripeEvent('charge.refunded', refund)]);
    expect(result).toMatchObject({ stage: 'applied', delta: -100 });
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  describe('bodies that are not what their Content-Encoding says', () => {
    /** A correctly signed delivery whose body is sent as `bytes(payload)` under `contentEncoding`. */
    async function deliverEncoded(
      event: StripeEvent,
      contentEncoding: string,
      bytes: (payload: string) => Buffer,
    ) {
      const request = webhookRequest(JSON.stringify(event), WEBHOOK_SECRET);
      const response = await fetch(`${h.baseUrl}/webhooks/stripe`, {
        method: 'POST',
        headers: { ...request.headers, 'content-encoding': contentEncoding },
        body: bytes(request.body),
      });
      return { status: response.status, body: (await response.json()) as any };
    }

    async function expectNothingChanged(event: StripeEvent, accountId: string) {
      await expectNothingStarted(event);
      expect(await rejectedRow(event.id)).toBeNull();
      expect(await checkedBalance(h, accountId)).toBe(0);
    }

    const plain = (payload: string) => Buffer.from(payload);
    const truncatedGzip = (payload: string) => gzipSync(payload).subarray(0, -8);
    const truncatedBrotli = (payload: string) => brotliCompressSync(payload).subarray(0, 5);

    it.each([
      ['gzip', 'plain JSON', plain],
      ['deflate', 'plain JSON', plain],
      ['br', 'plain JSON', plain],
      ['gzip', 'a gzip stream cut short', truncatedGzip],
      ['br', 'a brotli stream cut short', truncatedBrotli],
    ])(
      'when a signed event is sent as %s but is %s, then 400 malformed_body and nothing is started or stored',
      async (contentEncoding, _what, bytes) => {
        const account = await h.newAccount();
        const event = stripeEvent(
          'checkout.session.completed',
          checkoutSession({ accountId: account.id, packId: 'starter' }),
        );
        const answer = await deliverEncoded(event, contentEncoding, bytes);
        expect(answer).toEqual({
          status: 400,
          body: { error: { code: 'malformed_body', message: expect.stringContaining(contentEncoding) } },
        });
        await expectNothingChanged(event, account.id);
      },
    );

    it.each(['compress', 'x-gzip', 'gzip, br'])(
      'when a signed event is sent with Content-Encoding %s, which the service does not decode, then 415 unsupported_content_encoding and nothing is started or stored',
      async (contentEncoding) => {
        const account = await h.newAccount();
        const event = stripeEvent(
          'checkout.session.completed',
          checkoutSession({ accountId: account.id, packId: 'starter' }),
        );
        const answer = await deliverEncoded(event, contentEncoding, plain);
        expect(answer).toEqual({
          status: 415,
          body: { error: { code: 'unsupported_content_encoding', message: expect.any(String) } },
        });
        await expectNothingChanged(event, account.id);
      },
    );
  });

  it('when the namespace lacks the search attributes (a configuration to fix), then 503 and the event is not rejected for good', async () => {
    const namespace = `unconfigured-${randomUUID()}`;
    await h.temporal.connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    const temporal = new Client({
      connection: h.temporal.connection,
      namespace,
      dataConverter: temporalDataConverter(h.config.temporalPayloads),
    });
    const unconfigured = await startAppWith(h, { temporal });
    try {
      const account = await h.newAccount();
      const event = stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter' }),
      );
      const answer = await deliverEvent(`${unconfigured.url}/webhooks/stripe`, event, WEBHOOK_SECRET);
      expect(answer).toMatchObject({ status: 503, body: { error: { code: 'temporal_unavailable' } } });
      expect(await rejectedRow(event.id)).toBeNull();
      // Delivered where the namespace is set up, the same event is processed as usual.
      const [result] = await deliverAndSettle(h, [event]);
      expect(result).toMatchObject({ stage: 'completed' });
    } finally {
      await unconfigured.close();
    }
  });

  it('when the database is down while an impossible event must be stored, then 503 so that Stripe retries', async () => {
    const sql = createSql('postgres://postgres@127.0.0.1:1/none', { max: 1 });
    const withoutDatabase = await startAppWith(h, { sql });
    try {
      const event = stripeEvent('checkout.session.completed', { id: 'cs_x', object: 'checkout.session' });
      const answer = await deliverEvent(`${withoutDatabase.url}/webhooks/stripe`, event, WEBHOOK_SECRET);
      expect(answer).toMatchObject({ status: 503, body: { error: { code: 'database_unavailable' } } });
    } finally {
      await withoutDatabase.close();
      await sql.end({ timeout: 1 });
    }
  });

  describe('signed webhooks that can never be processed', () => {
    const deliverRaw = async (payload: string) => {
      const response = await fetch(`${h.baseUrl}/webhooks/stripe`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': signPayload(payload, WEBHOOK_SECRET),
        },
        body: payload,
      });
      return { status: response.status, body: await response.json() };
    };
    const rejectedByExcerpt = (excerpt: string) =>
      h.sql<{ event_id: string; event_type: string | null; deliveries: number; payload_excerpt: string }[]>`
        SELECT event_id, event_type, deliveries, payload_excerpt FROM rejected_events
        WHERE payload_excerpt = ${excerpt}`;

    it.each([
      ['a JSON array', `[${JSON.stringify(randomUUID())}]`],
      ['a JSON string', JSON.stringify(`evt_${randomUUID()}`)],
      ['a JSON number', String(Date.now())],
    ])(
      'when the signed body is %s, then 200 rejected, stored under a digest of the bytes, and a redelivery counts itself',
      async (_what, payload) => {
        const rejected = { status: 200, body: { received: true, workflowId: null, status: 'rejected' } };
        expect(await deliverRaw(payload)).toEqual(rejected);
        expect(await deliverRaw(payload)).toEqual(rejected);
        const rows = await rejectedByExcerpt(payload);
        expect(rows).toEqual([
          {
            event_id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
            event_type: null,
            deliveries: 2,
            payload_excerpt: payload,
          },
        ]);
      },
    );

    it('when a signed event has a 300-character ID, a NUL in its type and a 100 kB body, then it is rejected under a digest with a bounded, NUL-free excerpt', async () => {
      const id = `evt_${'x'.repeat(296)}`;
      const event = {
        ...stripeEvent('checkout.session.completed', checkoutSession({ packId: 'starter' })),
        id,
        type: 'checkout.session.completed\u0000',
        padding: 'p'.repeat(100_000),
      };
      const payload = JSON.stringify(event);
      expect((await deliverRaw(payload)).body).toMatchObject({ status: 'rejected' });
      const [row] = await h.sql<{ event_id: string; event_type: string | null; payload_excerpt: string }[]>`
        SELECT event_id, event_type, payload_excerpt FROM rejected_events WHERE payload_excerpt LIKE ${`%${id}%`}`;
      expect(row?.event_id).toMatch(/^sha256:/);
      expect(row?.event_type).toBeNull();
      expect(row?.payload_excerpt.length).toBeLessThanOrEqual(4096);
      expect(row?.payload_excerpt).not.toContain('\u0000');
    });

    it('when a paid session names its account with a trailing lone surrogate, then nothing is granted to the real account and it is held', async () => {
      const account = await h.newAccount();
      const session = checkoutSession({ accountId: account.id, packId: 'starter' });
      const event = stripeEvent('checkout.session.completed', {
        ...session,
        client_reference_id: null,
        metadata: { ...(session.metadata as Record<string, string>), accountId: `${account.id}\ud800` },
      });
      expect((await h.deliver(event)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(event.id);
      await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
        what: 'held_for_review',
      });
      expect(await checkedBalance(h, account.id)).toBe(0);
      expect(await ledgerOf(h, account.id)).toEqual([]);
      await handle.terminate('test cleanup');
    });
  });
});
