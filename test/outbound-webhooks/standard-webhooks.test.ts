import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import {
  createOutboundWebhookActivities,
  DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
} from '../../activities/outbound-webhooks/dispatcher';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { API_KEY, startHarness, type Harness } from '../support/harness';

/**
 * Deliveries as a receiver sees them, verified with `standardwebhooks` from npm (the reference
 * implementation of the specification), never with this project's code: a new endpoint's secret,
 * a rotation's overlap, and the secrets of endpoints created before the scheme changed.
 */

interface Received {
  body: string;
  headers: Record<string, string>;
}

/** Whether the package verifies the request with this secret (and how it is given). */
function verifies(request: Received, secret: string | Uint8Array, format?: 'raw'): boolean {
  try {
    new Webhook(secret, format ? { format } : undefined).verify(request.body, request.headers);
    return true;
  } catch (error) {
    if (error instanceof WebhookVerificationError) return false;
    throw error;
  }
}

describe('deliveries signed as Standard Webhooks', () => {
  let h: Harness;
  let server: Server;
  let url: string;
  const received: Received[] = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({
          body: Buffer.concat(chunks).toString('utf8'),
          headers: Object.fromEntries(
            ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [
              name,
              String(req.headers[name] ?? ''),
            ]),
          ),
        });
        res.writeHead(200).end();
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

  const activities = () =>
    createOutboundWebhookActivities({
      sql: h.sql,
      config: {
        outboundWebhooks: DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
        secretKeys: h.config.temporalPayloads.keyRing,
      },
    });

  /** Queues one event for the endpoint, makes its first attempt, and answers what was received. */
  async function deliverOne(endpointId: string): Promise<Received> {
    const account = await h.newAccount();
    const eventId = outboundEventId('balance.low', `standard:${account.id}`);
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: eventId,
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 5 },
      }),
    );
    const [row] = await h.sql<{ id: string }[]>`
      SELECT id FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND event_id = ${eventId}`;
    const count = received.length;
    expect(await activities().attemptWebhookDelivery({ deliveryId: Number(row!.id), attempt: 1 })).toEqual({
      outcome: 'delivered',
      responseStatus: 200,
    });
    expect(received).toHaveLength(count + 1);
    const request = received.at(-1)!;
    expect(request.headers['webhook-id']).toBe(eventId);
    return request;
  }

  const rotate = (endpointId: string, body?: unknown) =>
    h.api('POST', `/v1/webhook-endpoints/${endpointId}/rotate-secret`, body);

  it('when the secret is rotated, then for the overlap each delivery carries both signatures and verifies with either secret; after it, with the new one only', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    const id = created.body.id as string;
    const first = created.body.secret as string;
    expect(first).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const plain = await deliverOne(id);
    expect(plain.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifies(plain, first)).toBe(true);

    const before = Date.now();
    const rotated = await rotate(id, { overlapSeconds: 3600 });
    expect(rotated.status).toBe(200);
    const second = rotated.body.secret as string;
    expect(second).toMatch(/^whsec_/);
    expect(second).not.toBe(first);
    const overlapEnd = Date.parse(rotated.body.previousSecretExpiresAt as string);
    expect(overlapEnd).toBeGreaterThanOrEqual(before + 3_599_000);
    expect(overlapEnd).toBeLessThanOrEqual(Date.now() + 3_601_000);
    const read = await h.api('GET', `/v1/webhook-endpoints/${id}`);
    expect(read.body).toMatchObject({ previousSecretExpiresAt: rotated.body.previousSecretExpiresAt });
    expect(read.body).not.toHaveProperty('secret');

    const during = await deliverOne(id);
    expect(during.headers['webhook-signature']).toMatch(/^v1,\S+ v1,\S+$/);
    expect(verifies(during, first)).toBe(true);
    expect(verifies(during, second)).toBe(true);
    expect(verifies(during, `whsec_${randomBytes(32).toString('base64')}`)).toBe(false);

    // The overlap ends: the replaced secret signs no more.
    await h.sql`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = ${id}`;
    const after = await deliverOne(id);
    expect(after.headers['webhook-signature']).toMatch(/^v1,\S+$/);
    expect([verifies(after, first), verifies(after, second)]).toEqual([false, true]);
    expect((await h.api('GET', `/v1/webhook-endpoints/${id}`)).body.previousSecretExpiresAt).toBeNull();

    // Without an overlap, the replaced secret stops at once; an earlier one is gone too.
    const third = (await rotate(id, { overlapSeconds: 0 })).body as {
      secret: string;
      previousSecretExpiresAt: null;
    };
    expect(third.previousSecretExpiresAt).toBeNull();
    const last = await deliverOne(id);
    expect([verifies(last, first), verifies(last, second), verifies(last, third.secret)]).toEqual([
      false,
      false,
      true,
    ]);
  });

  it('when a rotation overlaps another, then the secret replaced first stops signing', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    const id = created.body.id as string;
    const second = (await rotate(id)).body as { secret: string; previousSecretExpiresAt: string };
    // A day by default.
    expect(Date.parse(second.previousSecretExpiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000);
    const third = (await rotate(id, { overlapSeconds: 600 })).body as { secret: string };
    const request = await deliverOne(id);
    expect([
      verifies(request, created.body.secret as string),
      verifies(request, second.secret),
      verifies(request, third.secret),
    ]).toEqual([false, true, true]);
  });

  it('when an endpoint was created before deliveries were signed this way, then its old secret verifies as the key bytes of a whsec_ secret, or as a raw key, and rotates like any other', async () => {
    const old = `whsec_${randomBytes(32).toString('base64url')}`;
    const id = `we_before${randomBytes(6).toString('hex')}`;
    await h.sql`
      INSERT INTO webhook_endpoints (id, url, event_types, secret) VALUES (${id}, ${url}, ${['balance.low']}, ${old})`;
    const request = await deliverOne(id);
    expect(verifies(request, `whsec_${Buffer.from(old, 'utf8').toString('base64')}`)).toBe(true);
    expect(verifies(request, old, 'raw')).toBe(true);

    const rotated = (await rotate(id, { overlapSeconds: 60 })).body as { secret: string };
    const during = await deliverOne(id);
    expect(verifies(during, old, 'raw')).toBe(true);
    expect(verifies(during, rotated.secret)).toBe(true);
  });

  it('when a rotation is asked wrongly, then it answers its stable error and changes nothing', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    const id = created.body.id as string;
    const sealedOf = async () =>
      (
        await h.sql<{ secret_sealed: Buffer }[]>`SELECT secret_sealed FROM webhook_endpoints WHERE id = ${id}`
      )[0]!.secret_sealed;
    const before = await sealedOf();
    for (const body of [
      { overlapSeconds: -1 },
      { overlapSeconds: 8 * 24 * 3600 },
      { overlapSeconds: 'a day' },
      { overlap: 60 },
    ]) {
      const answer = await rotate(id, body);
      expect([body, answer.status, answer.body.error.code]).toEqual([body, 400, 'invalid_request']);
    }
    expect((await sealedOf()).equals(before)).toBe(true);
    expect((await rotate(id, undefined)).status).toBe(200);
    expect((await sealedOf()).equals(before)).toBe(false);
    const [settled] = await h.sql`SELECT secret_sealed, updated_at FROM webhook_endpoints WHERE id = ${id}`;
    const refused = await h.api('POST', `/v1/webhook-endpoints/${id}/rotate-secret`, {}, API_KEY);
    expect([refused.status, refused.body.error.code]).toEqual([403, 'insufficient_role']);
    const missing = await rotate('we_doesNotExist0000000000', {});
    expect([missing.status, missing.body.error.code]).toEqual([404, 'webhook_endpoint_not_found']);
    expect(await h.sql`SELECT secret_sealed, updated_at FROM webhook_endpoints WHERE id = ${id}`).toEqual([
      settled,
    ]);
  });
});
