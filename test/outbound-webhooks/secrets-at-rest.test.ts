import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createOutboundWebhookActivities,
  DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
} from '../../activities/outbound-webhooks/dispatcher';
import { PayloadKeyRing } from '../../config/payload-codec';
import { sealEndpointSecrets } from '../../db/outbound-webhooks/endpoint-secrets';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { startHarness, type Harness } from '../support/harness';
import { TEST_PAYLOAD_KEYS, TEST_ROTATED_PAYLOAD_KEY } from '../support/payload-keys';

/**
 * Endpoint secrets at rest: sealed with the payload key ring, opened only to sign. Rows an
 * earlier release stored in clear are sealed once, keeping the key their receivers verify with.
 */

interface Received {
  body: string;
  headers: IncomingHttpHeaders;
}

describe('webhook endpoint secrets at rest', () => {
  let h: Harness;
  let server: Server;
  let url: string;
  const received: Received[] = [];
  const ring = () => h.config.temporalPayloads.keyRing;
  const rotatedRing = PayloadKeyRing.from(`${TEST_ROTATED_PAYLOAD_KEY},${TEST_PAYLOAD_KEYS}`);

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await h?.close();
  });

  const activities = (keyRing: PayloadKeyRing = ring()) =>
    createOutboundWebhookActivities({
      sql: h.sql,
      config: { outboundWebhooks: DEFAULT_OUTBOUND_WEBHOOK_SETTINGS, secretKeys: keyRing },
    });

  /** Queues one event for the endpoint and answers its delivery's ID. */
  async function deliveryFor(endpointId: string): Promise<number> {
    const account = await h.newAccount();
    const eventId = outboundEventId('balance.low', `at-rest:${account.id}`);
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: eventId,
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 1 },
      }),
    );
    const [row] = await h.sql<{ id: string }[]>`
      SELECT id FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND event_id = ${eventId}`;
    return Number(row!.id);
  }

  /** An endpoint as an earlier release stored it: its secret in clear. */
  async function clearEndpoint(secret: string): Promise<string> {
    const id = `we_clear${Math.random().toString(36).slice(2, 14)}`;
    await h.sql`
      INSERT INTO webhook_endpoints (id, url, event_types, secret)
      VALUES (${id}, ${url}, ${['balance.low']}, ${secret})`;
    return id;
  }

  async function stored(id: string) {
    const [row] = await h.sql<
      { secret: string | null; secret_sealed: Buffer | null; secret_key_id: string | null }[]
    >`
      SELECT secret, secret_sealed, secret_key_id FROM webhook_endpoints WHERE id = ${id}`;
    return row!;
  }

  /**
   * Whether the last request received verifies, with the Standard Webhooks package, under the
   * secret that presents these key bytes (`whsec_` and their base64).
   */
  function signedWith(key: Buffer): boolean {
    const last = received.at(-1)!;
    try {
      new Webhook(`whsec_${key.toString('base64')}`).verify(
        last.body,
        last.headers as Record<string, string>,
      );
      return true;
    } catch (error) {
      if (error instanceof WebhookVerificationError) return false;
      throw error;
    }
  }

  it('when an endpoint is created, then its secret is stored only sealed, under the current key, and never in clear', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    expect(created.status).toBe(201);
    const secret = created.body.secret as string;
    const row = await stored(created.body.id);
    expect(row.secret).toBeNull();
    expect(row.secret_key_id).toBe(ring().currentKeyId);
    expect(row.secret_sealed).toBeInstanceOf(Buffer);
    // Neither the secret as shown nor any spelling of its key bytes is in the row.
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const [dump] = await h.sql<{ text: string }[]>`
      SELECT w::text AS text FROM webhook_endpoints w WHERE id = ${created.body.id}`;
    for (const spelling of [secret, key.toString('hex'), key.toString('base64'), key.toString('base64url')]) {
      expect(dump!.text).not.toContain(spelling);
    }
    expect(row.secret_sealed!.includes(key)).toBe(false);

    // Opened only to sign: the delivery verifies with the secret shown at creation.
    const deliveryId = await deliveryFor(created.body.id);
    expect(await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 })).toMatchObject({
      outcome: 'delivered',
    });
    expect(signedWith(Buffer.from(secret.slice('whsec_'.length), 'base64'))).toBe(true);
  });

  it('when endpoints were stored in clear by an earlier release, then sealing seals each once, and they sign with the same key bytes', async () => {
    const secret = 'whsec_Legacy0123456789abcdefghijklmnopqrstuvwx';
    const id = await clearEndpoint(secret);
    const first = await sealEndpointSecrets(h.sql, ring(), { endpointIds: [id] });
    const second = await sealEndpointSecrets(h.sql, ring(), { endpointIds: [id] });
    expect(first).toEqual({ sealed: 1, resealed: 0, unreadable: [] });
    expect(second).toEqual({ sealed: 0, resealed: 0, unreadable: [] });
    const row = await stored(id);
    expect(row.secret).toBeNull();
    expect(row.secret_key_id).toBe(ring().currentKeyId);
    expect(row.secret_sealed!.includes(Buffer.from(secret))).toBe(false);

    const deliveryId = await deliveryFor(id);
    expect(await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 })).toMatchObject({
      outcome: 'delivered',
    });
    expect(signedWith(Buffer.from(secret))).toBe(true);
  });

  it('when the dispatcher meets a secret still in clear, then it signs with it and seals it', async () => {
    const secret = 'whsec_StillClear0123456789abcdefghijklmnopqrs';
    const id = await clearEndpoint(secret);
    const deliveryId = await deliveryFor(id);
    expect(await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 })).toMatchObject({
      outcome: 'delivered',
    });
    expect(signedWith(Buffer.from(secret))).toBe(true);
    const row = await stored(id);
    expect([row.secret, row.secret_key_id]).toEqual([null, ring().currentKeyId]);
  });

  it('when a new key is put first in the ring, then sealing again moves secrets to it, and a ring without it cannot sign', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    const id = created.body.id as string;
    const before = await stored(id);
    expect(await sealEndpointSecrets(h.sql, rotatedRing, { endpointIds: [id] })).toEqual({
      sealed: 0,
      resealed: 1,
      unreadable: [],
    });
    const after = await stored(id);
    expect(after.secret_key_id).toBe(rotatedRing.currentKeyId);
    expect(after.secret_sealed!.equals(before.secret_sealed!)).toBe(false);

    const deliveryId = await deliveryFor(id);
    // The old ring alone no longer opens it: the attempt is recorded as failed, saying why, not sent.
    const count = received.length;
    expect(await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 })).toEqual({
      outcome: 'retrying',
      responseStatus: null,
    });
    expect(received).toHaveLength(count);
    const [attempt] = await h.sql<{ error: string }[]>`
      SELECT error FROM webhook_delivery_attempts WHERE delivery_id = ${deliveryId}`;
    expect(attempt!.error).toMatch(/not signed: .*"test-2".*not in TEMPORAL_PAYLOAD_KEYS/);
    expect(await sealEndpointSecrets(h.sql, ring(), { endpointIds: [id] })).toEqual({
      sealed: 0,
      resealed: 0,
      unreadable: [id],
    });

    expect(await activities(rotatedRing).attemptWebhookDelivery({ deliveryId, attempt: 2 })).toMatchObject({
      outcome: 'delivered',
    });
    expect(
      new Webhook(created.body.secret as string).verify(
        received.at(-1)!.body,
        received.at(-1)!.headers as Record<string, string>,
      ),
    ).toBeTruthy();
  });
});
