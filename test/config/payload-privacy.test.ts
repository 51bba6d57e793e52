import { defaultPayloadConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import type { History } from '@temporalio/common/lib/proto-utils';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { payloadFromJson, payloadToJson } from '../../api/codec-server';
import { createApp } from '../../api/app';
import { createMetrics } from '../../api/metrics';
import { failureConverter } from '../../config/failure-converter';
import { createLogger } from '../../config/logger';
import {
  EncryptionCodec,
  PayloadKeyRing,
  payloadKeyId,
  temporalDataConverter,
} from '../../config/payload-codec';
import { statusQuery } from '../../workflows/purchases/contract';
import { reviewSignal } from '../../workflows/reviews/contract';
import { SEARCH_ATTRIBUTES } from '../../workflows/shared/search-attributes';
import { checkoutSession, stripeEvent, stripeId } from '../../stripe/fixtures/index';
import { startHarness, testApiConfig, type Harness } from '../support/harness';
import { payloadsOf, readableText, searchAttributesOf, spelledIn } from '../support/history-privacy';
import {
  TEST_CODEC_TOKEN,
  TEST_PAYLOAD_KEYS,
  TEST_ROTATED_PAYLOAD_KEY,
  TEST_UI_ORIGIN,
} from '../support/payload-keys';
import { waitUntil } from '../support/wait';

/**
 * Customer data stays private in Temporal's history: every payload is encrypted by the service's
 * codec (config/payload-codec.ts), search attributes hold nothing personal, and the codec server
 * lets the Temporal UI and CLI read it back, for those allowed to.
 */

const utf8 = (text: string) => new TextEncoder().encode(text);
const jsonPayload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const testCodec = () => new EncryptionCodec(PayloadKeyRing.from(TEST_PAYLOAD_KEYS));

async function decodeValue(codec: PayloadCodec, payload: Payload): Promise<unknown> {
  const [decoded] = await codec.decode([payload]);
  return defaultPayloadConverter.fromPayload(decoded as Payload);
}

async function rawHistory(h: Harness, workflowId: string): Promise<History> {
  // The gRPC answer as the server stores it: no data converter is involved.
  const { history } = await h.temporal.workflowService.getWorkflowExecutionHistory({
    namespace: h.config.temporal.namespace,
    execution: { workflowId },
    maximumPageSize: 1000,
  });
  return history ?? {};
}

describe('the payload codec', () => {
  it('when a payload is encoded, then it is AES-256-GCM ciphertext naming its key, fresh each time, and decodes to the original', async () => {
    const codec = testCodec();
    const original = jsonPayload({ email: 'jane@customers.test', amount: 900 });
    const [first, second] = await codec.encode([original, original]);
    expect(payloadKeyId(first as Payload)).toBe('test-1');
    expect(Buffer.from(first?.metadata?.['encryption-cipher'] ?? []).toString()).toBe('AES-256-GCM');
    expect(Buffer.from(first?.data ?? []).equals(Buffer.from(second?.data ?? []))).toBe(false);
    expect(spelledIn(Buffer.from(first?.data ?? []).toString('latin1'), ['jane@customers.test'])).toEqual([]);
    expect(await codec.decode([first as Payload, second as Payload])).toEqual([original, original]);
  });

  it('when a ciphertext is altered or names a key the ring lacks, then decoding fails and says which key', async () => {
    const codec = testCodec();
    const [sealed] = (await codec.encode([jsonPayload({ a: 1 })])) as [Payload];
    const data = Buffer.from(sealed.data ?? []);
    data[20] = (data[20] ?? 0) ^ 1;
    await expect(codec.decode([{ ...sealed, data }])).rejects.toThrow(
      'a payload encrypted with key "test-1" failed authentication',
    );
    const relabelled = { ...sealed, metadata: { ...sealed.metadata, 'encryption-key-id': utf8('test-9') } };
    await expect(codec.decode([relabelled])).rejects.toThrow(
      'a payload was encrypted with key "test-9", which is not in TEMPORAL_PAYLOAD_KEYS',
    );
  });

  it('when a payload was written without the codec (before it was on), then decoding passes it through', async () => {
    const plain = jsonPayload({ written: 'before the codec' });
    expect(await testCodec().decode([plain])).toEqual([plain]);
  });

  it('when an error becomes a Temporal failure, then its message and stack travel as a payload the codec encrypts', () => {
    const failure = failureConverter.errorToFailure(
      new Error('550 <jane@customers.test>: mailbox unavailable'),
      defaultPayloadConverter,
    );
    expect(failure.message).toBe('Encoded failure');
    expect(failure.stackTrace).toBe('');
    expect(defaultPayloadConverter.fromPayload(failure.encodedAttributes as Payload)).toMatchObject({
      message: '550 <jane@customers.test>: mailbox unavailable',
    });
  });

  it('when the service builds a Temporal client or worker anywhere, then it gives it the data converter', () => {
    const root = path.join(__dirname, '..', '..');
    const files = ['api', 'worker', 'temporal', 'activities', 'cli', 'stripe', 'scripts', 'test'].flatMap(
      (dir) =>
        (readdirSync(path.join(root, dir), { recursive: true }) as string[])
          .filter((file) => file.endsWith('.ts'))
          .map((file) => path.join(dir, file)),
    );
    const missing: string[] = [];
    for (const file of files) {
      const source = readFileSync(path.join(root, file), 'utf8');
      for (const match of source.matchAll(
        /new Client\(|Worker\.create\(|createTimeSkipping\(|runReplayHistories\(/g,
      )) {
        // The call's arguments: up to its closing parenthesis.
        let depth = 0;
        let end = match.index + match[0].length - 1;
        do {
          const char = source[end];
          if (char === '(') depth += 1;
          if (char === ')') depth -= 1;
          end += 1;
        } while (depth > 0 && end < source.length);
        const call = source.slice(match.index, end);
        if (!call.includes('dataConverter') && !file.endsWith('payload-privacy.test.ts')) {
          missing.push(`${file}: ${call.split('\n')[0] ?? ''}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('customer data in Temporal', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function purchase(options: { refuseReceipt?: boolean } = {}) {
    const email = `jane.doe.${randomUUID()}@customers.test`;
    const account = await h.newAccount({ email });
    const customerId = stripeId('cus');
    const campaign = `spring-sale-${randomUUID()}`;
    const session = checkoutSession({
      accountId: account.id,
      packId: 'starter',
      email,
      customerId,
      metadata: { campaign },
    });
    const event = stripeEvent('checkout.session.completed', session);
    if (options.refuseReceipt) h.smtp.refuseRecipients(550);
    try {
      expect((await h.deliver(event)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(event.id);
      const result: unknown = await handle.result();
      return {
        account,
        email,
        customerId,
        campaign,
        event,
        handle,
        result,
        history: await rawHistory(h, event.id),
      };
    } finally {
      h.smtp.refuseRecipients(null);
    }
  }

  it('when a purchase goes through the webhook, then its history read without the codec holds no email, name, customer or metadata in any form, and with the codec it reads as before', async () => {
    const { account, email, customerId, campaign, event, handle, result, history } = await purchase();
    expect(result).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    await h.smtp.waitForMail(email);

    // Without the codec: the whole history, in every spelling, and its search attributes.
    const everything = readableText(history, { withSearchAttributes: true });
    expect(spelledIn(everything, [email, 'Jenny Rosen', customerId, campaign])).toEqual([]);
    // The account ID is searchable by design, and nowhere else.
    expect(spelledIn(readableText(history, { withSearchAttributes: false }), [account.id])).toEqual([]);
    const searchAttributes = searchAttributesOf(history);
    expect(Object.keys(searchAttributes)).toEqual(
      expect.arrayContaining(['AccountId', 'PurchaseStatus', 'StripeEventType']),
    );
    // Besides Temporal's own TemporalChangeVersion (the IDs of the workflow's patches).
    expect(SEARCH_ATTRIBUTES.map(({ name }) => name)).toEqual(
      expect.arrayContaining(
        Object.keys(searchAttributes).filter((name) => name !== 'TemporalChangeVersion'),
      ),
    );
    expect(searchAttributes.AccountId).toEqual([account.id]);
    expect(searchAttributes.StripeEventType).toEqual(['checkout.session.completed']);

    // Every payload is ciphertext of the current key.
    const payloads = payloadsOf(history);
    // The input, both local activities' results and the workflow's result, at least.
    expect(payloads.length).toBeGreaterThanOrEqual(4);
    expect(payloads.filter(({ payload }) => payloadKeyId(payload) !== 'test-1')).toEqual([]);

    // With the codec: the input the webhook started the workflow with, and its live status.
    const [codec] = temporalDataConverter(h.config.temporalPayloads).payloadCodecs as [PayloadCodec];
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(await decodeValue(codec, input as Payload)).toMatchObject({
      eventId: event.id,
      session: { customerEmail: email, customerId, accountId: account.id, packId: 'starter' },
    });
    const decoded = await Promise.all(payloads.map(({ payload }) => decodeValue(codec, payload)));
    expect(JSON.stringify(decoded)).toContain(email);
    expect(await handle.query(statusQuery)).toMatchObject({ stage: 'completed', credits: 100 });
  });

  it('when an activity fails with a message that quotes the customer, then the history keeps its type readable and its message encrypted', async () => {
    const { email, result, history } = await purchase({ refuseReceipt: true });
    expect(result).toMatchObject({ stage: 'completed_receipt_failed', receipt: 'failed' });
    const failures = (history.events ?? []).flatMap((event) => {
      // The receipt's first try is a local activity: its failure is in its marker.
      const failure =
        event.activityTaskFailedEventAttributes?.failure ?? event.markerRecordedEventAttributes?.failure;
      return failure ? [failure] : [];
    });
    expect(
      failures.map(
        (failure) => failure.cause?.applicationFailureInfo?.type ?? failure.applicationFailureInfo?.type,
      ),
    ).toContain('SmtpPermanentError');
    const everything = readableText(history, { withSearchAttributes: true });
    expect(spelledIn(everything, [email, 'mailbox unavailable', 'refused the email'])).toEqual([]);

    const [codec] = temporalDataConverter(h.config.temporalPayloads).payloadCodecs as [PayloadCodec];
    const attributes = failures[0]?.encodedAttributes ?? failures[0]?.cause?.encodedAttributes;
    expect(await decodeValue(codec, attributes as Payload)).toMatchObject({
      message: expect.stringContaining('The SMTP server refused the email'),
    });
  });

  describe('the codec server', () => {
    const bearer = { authorization: `Bearer ${TEST_CODEC_TOKEN}` };

    async function call(
      urlPath: string,
      body: unknown,
      headers: Record<string, string> = bearer,
      baseUrl = h.baseUrl,
    ) {
      const response = await fetch(`${baseUrl}${urlPath}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
    }

    it('when payloads are encoded then decoded, then they come back as they were, and encoded they are ciphertext', async () => {
      const plain = payloadToJson(jsonPayload({ email: 'jane@customers.test' }));
      const encoded = await call(
        '/codec/encode',
        { payloads: [plain] },
        { ...bearer, 'x-namespace': 'default' },
      );
      expect(encoded.status).toBe(200);
      expect(encoded.headers.get('cache-control')).toBe('no-store');
      const [sealed] = encoded.body.payloads;
      expect(Buffer.from(sealed.metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
      expect(spelledIn(JSON.stringify(sealed), ['jane@customers.test'])).toEqual([]);
      const decoded = await call('/codec/decode', { payloads: [sealed] });
      expect(decoded).toMatchObject({ status: 200, body: { payloads: [plain] } });
    });

    it('when the Temporal UI decodes a payload of a real history, with the token in its endpoint, then it reads the customer', async () => {
      const email = `ui.${randomUUID()}@customers.test`;
      const account = await h.newAccount({ email });
      const event = stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter', email }),
      );
      await h.deliver(event);
      await h.temporal.workflow.getHandle(event.id).result();
      const history = await rawHistory(h, event.id);
      const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input
        ?.payloads?.[0] as Payload;
      // What the UI sends: its origin, the namespace, and no Authorization of ours.
      const answer = await call(
        `/codec/${TEST_CODEC_TOKEN}/decode`,
        { payloads: [payloadToJson(input)] },
        { origin: TEST_UI_ORIGIN, 'x-namespace': h.config.temporal.namespace },
      );
      expect(answer.status).toBe(200);
      expect(answer.headers.get('access-control-allow-origin')).toBe(TEST_UI_ORIGIN);
      expect(answer.headers.get('access-control-allow-credentials')).toBe('true');
      const value = defaultPayloadConverter.fromPayload(payloadFromJson(answer.body.payloads[0]));
      expect(value).toMatchObject({ session: { customerEmail: email } });
    });

    it('when the credential is missing or wrong, then 401 and nothing is decoded', async () => {
      const [sealed] = await testCodec().encode([jsonPayload({ secret: true })]);
      const body = { payloads: [payloadToJson(sealed as Payload)] };
      const wrong = `${TEST_CODEC_TOKEN.slice(0, -1)}x`;
      for (const [urlPath, headers] of [
        ['/codec/decode', {}],
        ['/codec/decode', { authorization: `Bearer ${wrong}` }],
        ['/codec/decode', { authorization: TEST_CODEC_TOKEN }],
        // A client backend's API key (role write) is not enough to read histories.
        ['/codec/decode', { authorization: `Bearer ${h.config.apiKeys[0]?.secret ?? ''}` }],
        [`/codec/${wrong}/decode`, {}],
        // A token in the path is judged alone: a header cannot make up for a wrong one.
        [`/codec/${wrong}/decode`, bearer],
      ] as const) {
        const answer = await call(urlPath, body, headers);
        expect({ urlPath, headers, status: answer.status, code: answer.body?.error?.code }).toEqual({
          urlPath,
          headers,
          status: 401,
          code: 'unauthorized',
        });
        expect(JSON.stringify(answer.body)).not.toContain('secret');
      }
      expect((await call('/codec/nonsense', body)).status).toBe(404);
    });

    it('when an admin API key calls it, then it decodes; with another namespace, a foreign origin or a bad payload, then it refuses', async () => {
      const admin = `admin_secret_${randomUUID()}`;
      const config = testApiConfig({ BILLING_API_KEYS: `ops:admin:${admin}` });
      const app = createApp({
        config,
        sql: h.sql,
        temporal: h.temporal,
        stripe: null,
        logger: createLogger({ level: 'silent', name: 'test' }),
        metrics: createMetrics(),
      });
      const server: Server = await new Promise((resolve) => {
        const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
      });
      try {
        const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const [sealed] = await testCodec().encode([jsonPayload({ ok: 1 })]);
        const body = { payloads: [payloadToJson(sealed as Payload)] };
        const asAdmin = { authorization: `Bearer ${admin}` };
        expect((await call('/codec/decode', body, asAdmin, baseUrl)).body).toEqual({
          payloads: [payloadToJson(jsonPayload({ ok: 1 }))],
        });
        expect(
          await call('/codec/decode', body, { ...asAdmin, 'x-namespace': 'other' }, baseUrl),
        ).toMatchObject({
          status: 403,
          body: { error: { code: 'namespace_not_served' } },
        });
        const foreign = await call(
          '/codec/decode',
          body,
          { ...asAdmin, origin: 'https://evil.example' },
          baseUrl,
        );
        expect(foreign).toMatchObject({ status: 403, body: { error: { code: 'origin_not_allowed' } } });
        expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
        const tampered = { ...body.payloads[0], data: Buffer.alloc(40, 1).toString('base64') };
        expect(await call('/codec/decode', { payloads: [tampered] }, asAdmin, baseUrl)).toMatchObject({
          status: 400,
          body: {
            error: {
              code: 'invalid_payload',
              message: expect.stringMatching(/^Payload 0 could not be decoded/),
            },
          },
        });
        expect(await call('/codec/decode', { payloads: 'none' }, asAdmin, baseUrl)).toMatchObject({
          status: 400,
          body: { error: { code: 'invalid_request' } },
        });
      } finally {
        server.close();
      }
    });

    it('when a browser asks for CORS preflight, then only the Temporal UI origin is answered, with the headers the UI sends', async () => {
      const preflight = (origin: string) =>
        fetch(`${h.baseUrl}/codec/${TEST_CODEC_TOKEN}/decode`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type,x-namespace,authorization',
          },
        });
      const allowed = await preflight(TEST_UI_ORIGIN);
      expect(allowed.status).toBe(204);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(TEST_UI_ORIGIN);
      expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
      expect(allowed.headers.get('access-control-allow-methods')).toContain('POST');
      expect(
        allowed.headers
          .get('access-control-allow-headers')
          ?.split(',')
          .map((name) => name.trim()),
      ).toEqual(expect.arrayContaining(['authorization', 'content-type', 'x-namespace']));
      expect(allowed.headers.get('vary')).toMatch(/origin/i);

      for (const origin of ['http://localhost:9999', 'https://evil.example', 'null']) {
        const refused = await preflight(origin);
        expect({ origin, status: refused.status }).toEqual({ origin, status: 403 });
        expect(refused.headers.get('access-control-allow-origin')).toBeNull();
        expect(refused.headers.get('access-control-allow-credentials')).toBeNull();
      }
    });
  });
});

describe('a key rotation', () => {
  it('when workflows started under key 1 go on after the ring becomes (key 2, key 1), then they complete, and new payloads use key 2', async () => {
    const first = await startHarness();
    let second: Harness | null = null;
    try {
      const email = `rotation.${randomUUID()}@customers.test`;
      const account = await first.newAccount({ email });
      // Held for review (the amount paid is not the pack's): it waits for a decision under key 1.
      const event = stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter', email, amountTotal: 1 }),
      );
      expect((await first.deliver(event)).status).toBe(200);
      const held = first.temporal.workflow.getHandle(event.id);
      await waitUntil(async () => (await held.query(statusQuery)).stage === 'held_for_review');
      await first.stopWorker();

      second = await startHarness({
        configOverrides: {
          TEMPORAL_PAYLOAD_KEYS: `${TEST_ROTATED_PAYLOAD_KEY},${TEST_PAYLOAD_KEYS}`,
          TEMPORAL_TASK_QUEUE: first.config.temporal.taskQueue,
        },
      });
      const handle = second.temporal.workflow.getHandle(event.id);
      await handle.signal(reviewSignal, {
        decision: 'approve',
        reviewer: 'ops@example.com',
        note: 'rotation',
      });
      expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 100, receipt: 'sent' });
      await second.smtp.waitForMail(email);

      const keys = payloadsOf(await rawHistory(second, event.id)).map(({ payload }) => payloadKeyId(payload));
      expect(new Set(keys)).toEqual(new Set(['test-1', 'test-2']));
      // Everything written before the rotation is key 1; everything after, key 2.
      expect(keys.indexOf('test-1')).toBe(0);
      expect(keys.lastIndexOf('test-1')).toBeLessThan(keys.indexOf('test-2'));
    } finally {
      await second?.close();
      await first.close();
    }
  });
});
