import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createOutboundWebhookActivities,
  DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
} from '../../activities/outbound-webhooks/dispatcher';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { startHarness, type Harness } from '../support/harness';
import { waitUntil } from '../support/wait';

/**
 * One delivery attempt, run as the dispatcher runs it, against endpoints that misbehave
 * (redirects, bodies that never end or never stop), against an endpoint deleted meanwhile, and
 * re-sends or cursors that name another endpoint's deliveries. No dispatcher runs here: each
 * test makes the attempts it asserts on.
 */

/** An endpoint on 127.0.0.1 whose answer each test decides. */
async function httpEndpoint(handle: (res: ServerResponse, body: string) => void) {
  const requests: string[] = [];
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push(body);
      handle(res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('webhook deliveries to endpoints that misbehave', () => {
  let h: Harness;
  const closers: Array<() => Promise<void>> = [];
  const settings = { ...DEFAULT_OUTBOUND_WEBHOOK_SETTINGS, attemptTimeoutMs: 1_000 };

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    for (const close of closers) await close();
    await h?.close();
  });

  const activities = () =>
    createOutboundWebhookActivities({
      sql: h.sql,
      config: { outboundWebhooks: settings, secretKeys: h.config.temporalPayloads.keyRing },
    });

  async function endpointWithDelivery(url: string) {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    expect(created.status).toBe(201);
    const account = await h.newAccount();
    const eventId = outboundEventId('balance.low', `delivery-test:${account.id}`);
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: eventId,
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 1 },
      }),
    );
    const [row] = await h.sql<{ id: string }[]>`
      SELECT id FROM webhook_deliveries WHERE endpoint_id = ${created.body.id} AND event_id = ${eventId}`;
    return {
      endpointId: created.body.id as string,
      deliveryId: Number(row!.id),
      secret: created.body.secret as string,
    };
  }

  it('when an endpoint answers a redirect, then it is not followed and the attempt fails with its status', async () => {
    const target = await httpEndpoint((res) => res.writeHead(200).end('ok'));
    closers.push(target.close);
    const redirecting = await httpEndpoint((res) => res.writeHead(307, { location: target.url }).end());
    closers.push(redirecting.close);
    const { deliveryId } = await endpointWithDelivery(redirecting.url);
    const result = await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 });
    expect(result).toEqual({ outcome: 'retrying', responseStatus: 307 });
    expect(redirecting.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it('when an endpoint answers 200 and then an endless body, slowly, then the attempt ends, delivered, with a short excerpt', async () => {
    let written = 0;
    const dripping = await httpEndpoint((res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('a'.repeat(100));
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        written += 1;
        res.write('b');
      }, 20);
      res.on('close', () => clearInterval(timer));
    });
    closers.push(dripping.close);
    const { deliveryId } = await endpointWithDelivery(dripping.url);
    const result = await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 });
    expect(result).toEqual({ outcome: 'delivered', responseStatus: 200 });
    // Had the whole excerpt been awaited, 1,100 more bytes would have dripped in first.
    expect(written).toBeLessThan(1_100);
  });

  it('when an endpoint answers an enormous body, then only its start is read', async () => {
    let sent = 0;
    const flooding = await httpEndpoint((res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = 'z'.repeat(64 * 1024);
      const pump = () => {
        while (!res.destroyed && sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    closers.push(flooding.close);
    const { deliveryId } = await endpointWithDelivery(flooding.url);
    const result = await activities().attemptWebhookDelivery({ deliveryId, attempt: 1 });
    expect(result).toEqual({ outcome: 'retrying', responseStatus: 500 });
    expect(sent).toBeLessThan(256 * 1024 * 1024);
    const [attempt] = await h.sql<{ response_excerpt: string; error: string }[]>`
      SELECT response_excerpt, error FROM webhook_delivery_attempts WHERE delivery_id = ${deliveryId}`;
    expect(attempt).toEqual({ response_excerpt: 'z'.repeat(300), error: 'answered HTTP 500' });
  });

  it('when the endpoint is deleted while an attempt is out, then the attempt is skipped, not an error, and nothing is left', async () => {
    let answer: (() => void) | null = null;
    const slow = await httpEndpoint((res) => {
      answer = () => res.writeHead(200).end('late');
    });
    closers.push(slow.close);
    const { endpointId, deliveryId } = await endpointWithDelivery(slow.url);
    const attempt = activities().attemptWebhookDelivery({ deliveryId, attempt: 1 });
    await waitUntil(() => answer !== null, { what: 'the request' });
    expect((await h.api('DELETE', `/v1/webhook-endpoints/${endpointId}`)).status).toBe(200);
    answer!();
    await expect(attempt).resolves.toEqual({ outcome: 'skipped', responseStatus: null });
    expect(
      await h.sql`SELECT 1 FROM webhook_delivery_attempts WHERE delivery_id = ${deliveryId}`,
    ).toHaveLength(0);
  });

  it('when an endpoint is deleted while a change queues an event for it, then the change still commits', async () => {
    const rx = await httpEndpoint((res) => res.writeHead(200).end());
    closers.push(rx.close);
    const created = await h.api('POST', '/v1/webhook-endpoints', {
      url: rx.url,
      eventTypes: ['balance.low'],
    });
    expect(created.status).toBe(201);
    let commitDeletion!: () => void;
    const deletionMayCommit = new Promise<void>((resolve) => (commitDeletion = resolve));
    let deletedUncommitted!: () => void;
    const deleting = new Promise<void>((resolve) => (deletedUncommitted = resolve));
    // An admin's DELETE, its cascade still running (many deliveries), not yet committed.
    const deletion = h.sql.begin(async (tx) => {
      await tx`DELETE FROM webhook_endpoints WHERE id = ${created.body.id}`;
      deletedUncommitted();
      await deletionMayCommit;
    });
    await deleting;
    const account = await h.newAccount();
    const eventId = outboundEventId('balance.low', `deleted-meanwhile:${account.id}`);
    const change = h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: eventId,
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 1 },
      }),
    );
    await waitUntil(
      async () =>
        (
          await h.sql`SELECT 1 FROM pg_stat_activity
                      WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO webhook_deliveries%'`
        ).length > 0,
      { what: 'the change waiting for the deletion' },
    );
    commitDeletion();
    await deletion;
    await expect(change).resolves.toBeUndefined();
    expect(await h.sql`SELECT id FROM outbound_events WHERE id = ${eventId}`).toHaveLength(1);
  });

  it('when an event holds non-ASCII text, then the signature verifies over the raw bytes received with a Standard Webhooks library, with a timestamp in seconds', async () => {
    let raw: Buffer | null = null;
    let headers: Record<string, string> = {};
    const server: Server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        raw = Buffer.concat(chunks);
        headers = {
          'webhook-id': String(req.headers['webhook-id']),
          'webhook-timestamp': String(req.headers['webhook-timestamp']),
          'webhook-signature': String(req.headers['webhook-signature']),
        };
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['topup.failed'] });
    const account = await h.newAccount();
    const eventId = outboundEventId('topup.failed', `unicode:${account.id}`);
    const data = { reason: 'carte refusée — 残高不足 \u2028 😀' };
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, { id: eventId, type: 'topup.failed', accountId: account.id, data }),
    );
    const [row] = await h.sql<{ id: string }[]>`
      SELECT id FROM webhook_deliveries WHERE endpoint_id = ${created.body.id} AND event_id = ${eventId}`;
    const before = Math.floor(Date.now() / 1000);
    expect(await activities().attemptWebhookDelivery({ deliveryId: Number(row!.id), attempt: 1 })).toEqual({
      outcome: 'delivered',
      responseStatus: 204,
    });
    const t = Number(headers['webhook-timestamp']);
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    expect(headers['webhook-id']).toBe(eventId);
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    // The npm package of the specification verifies it, over the raw bytes, and answers the event.
    const verified = new Webhook(created.body.secret as string).verify(raw!, headers) as { data: unknown };
    expect(verified.data).toEqual(data);
    expect(() =>
      new Webhook(created.body.secret as string).verify(Buffer.concat([raw!, Buffer.from(' ')]), headers),
    ).toThrow(WebhookVerificationError);
  });

  it('when the longest retry interval is configured beyond 24 days, then a failed attempt is still recorded (not re-sent for want of a record)', async () => {
    const rx = await httpEndpoint((res) => res.writeHead(503).end());
    closers.push(rx.close);
    const { deliveryId } = await endpointWithDelivery(rx.url);
    const month = 30 * 24 * 60 * 60_000;
    const patient = createOutboundWebhookActivities({
      sql: h.sql,
      config: {
        secretKeys: h.config.temporalPayloads.keyRing,
        outboundWebhooks: {
          ...settings,
          retryInitialMs: month,
          retryMaxIntervalMs: month,
          retryWindowMs: 3 * month,
        },
      },
    });
    await expect(patient.attemptWebhookDelivery({ deliveryId, attempt: 1 })).resolves.toEqual({
      outcome: 'retrying',
      responseStatus: 503,
    });
    expect(rx.requests).toHaveLength(1);
  });

  it("when a re-send names another endpoint's delivery, or a forged cursor, then it is refused and that delivery is untouched", async () => {
    const rx = await httpEndpoint((res) => res.writeHead(500).end());
    closers.push(rx.close);
    const mine = await endpointWithDelivery(rx.url);
    const theirs = await endpointWithDelivery(rx.url);
    await h.sql`UPDATE webhook_deliveries SET status = 'failed' WHERE id = ${theirs.deliveryId}`;
    const crossed = await h.api(
      'POST',
      `/v1/webhook-endpoints/${mine.endpointId}/deliveries/${theirs.deliveryId}/resend`,
    );
    expect([crossed.status, crossed.body.error.code]).toEqual([404, 'webhook_delivery_not_found']);
    const [after] =
      await h.sql`SELECT status, resend_requested FROM webhook_deliveries WHERE id = ${theirs.deliveryId}`;
    expect(after).toEqual({ status: 'failed', resend_requested: false });
    // A cursor of another endpoint's delivery only pages this endpoint's.
    const cursor = Buffer.from(String(theirs.deliveryId + 1)).toString('base64url');
    const page = await h.api('GET', `/v1/webhook-endpoints/${mine.endpointId}/deliveries?cursor=${cursor}`);
    const listed = (page.body as { deliveries: Array<{ id: number }> }).deliveries.map((d) => d.id);
    expect(listed).toContain(mine.deliveryId);
    const owners =
      await h.sql`SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE id = ANY (${listed})`;
    expect(owners).toEqual([{ endpoint_id: mine.endpointId }]);
    for (const forged of ['MA', 'LTE', 'OTAwNzE5OTI1NDc0MDk5Mg', 'YWJj']) {
      const refused = await h.api(
        'GET',
        `/v1/webhook-endpoints/${mine.endpointId}/deliveries?cursor=${forged}`,
      );
      expect([forged, refused.status]).toEqual([forged, 400]);
    }
  });
});
