import { MockActivityEnvironment } from '@temporalio/testing';
import { createHmac } from 'node:crypto';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMailer } from '../email/mailer';
import {
  createOutboundWebhookActivities,
  DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
} from '../activities/outbound-webhooks/dispatcher';
import { createPurchaseActivities } from '../activities/purchases/purchase';
import { outboundEventId, queueOutboundEvent } from '../db/outbound-webhooks/events';
import { endpointUrlProblem } from '../domain/outbound-events';
import { statusQuery, type PurchaseValidation } from '../workflows/purchases/contract';
import { reviewSignal } from '../workflows/reviews/contract';
import { summarizeCheckoutSession } from '../stripe/objects';
import { checkoutSession, stripeEvent } from '../stripe/fixtures/index';
import { ledgerRowsFor } from './support/db';
import { startHarness, TEST_OUTBOX_AGES, type Harness } from './support/harness';
import { scriptedSmtp } from './support/scripted-smtp';
import { waitUntil } from './support/wait';

describe('endpoint URLs a hostile admin registers', () => {
  it('when a production URL names loopback, link-local, shared or multicast space in another spelling, then it is refused', () => {
    for (const url of [
      'https://localhost./hooks',
      'https://LOCALHOST/hooks',
      'https://api.localhost/hooks',
      'https://[fe90::1]/hooks',
      'https://[febf::1]/hooks',
      'https://[::ffff:169.254.169.254]/hooks',
      'https://100.64.0.1/hooks',
      'https://224.0.0.1/hooks',
      'https://255.255.255.255/hooks',
      'https://[64:ff9b::a9fe:a9fe]/hooks',
      'https://[ff02::1]/hooks',
    ]) {
      expect([url, endpointUrlProblem(url, true)]).toEqual([url, expect.stringMatching(/not allowed/)]);
    }
    expect(endpointUrlProblem('https://backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('https://100.128.0.1/hooks', true)).toBeNull();
    // Names that merely start like a private range are names, not addresses.
    expect(endpointUrlProblem('https://10.backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('https://127.backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('https://[2606:4700::1111]/hooks', true)).toBeNull();
  });

  it('when a URL carries spaces or control characters (which the parser would silently drop), then it is refused, not stored as sent', () => {
    for (const url of [
      ' https://backend.example.com/hooks',
      'https://backend.example.com/hooks\n',
      'https://back\tend.example.com/hooks',
    ]) {
      expect([url, endpointUrlProblem(url, false)]).toEqual([url, expect.stringMatching(/control|space/)]);
    }
  });
});

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

describe('hostile endpoints and callers', () => {
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
    createOutboundWebhookActivities({ sql: h.sql, config: { outboundWebhooks: settings } });

  async function endpointWithDelivery(url: string) {
    const created = await h.api('POST', '/v1/webhook-endpoints', { url, eventTypes: ['balance.low'] });
    expect(created.status).toBe(201);
    const account = await h.newAccount();
    const eventId = outboundEventId('balance.low', `hostile:${account.id}`);
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

  it('when an event holds non-ASCII text, then the signature verifies over the raw bytes received, with a timestamp in seconds', async () => {
    let raw: Buffer | null = null;
    let header = '';
    const server: Server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        raw = Buffer.concat(chunks);
        header = String(req.headers['billing-signature']);
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
    const fields = Object.fromEntries(header.split(',').map((part) => part.split('=', 2)));
    const t = Number(fields.t);
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    const expected = createHmac('sha256', created.body.secret as string)
      .update(Buffer.concat([Buffer.from(`${t}.`), raw!]))
      .digest('hex');
    expect(fields.v1).toBe(expected);
    expect(JSON.parse(raw!.toString('utf8')).data).toEqual(data);
  });

  it('when the longest retry interval is configured beyond 24 days, then a failed attempt is still recorded (not re-sent for want of a record)', async () => {
    const rx = await httpEndpoint((res) => res.writeHead(503).end());
    closers.push(rx.close);
    const { deliveryId } = await endpointWithDelivery(rx.url);
    const month = 30 * 24 * 60 * 60_000;
    const patient = createOutboundWebhookActivities({
      sql: h.sql,
      config: {
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

  it('when a purchase is validated and granted again by the same workflow (its workflow task lost after the commit), then it is granted once and the receipt is still sent', async () => {
    const purchase = createPurchaseActivities({
      sql: h.sql,
      mailer: { send: () => Promise.reject(new Error('unused')), close: () => {} },
      invoicePayments: null,
      workflows: { isRunning: () => Promise.resolve(true) },
      config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    });
    const env = new MockActivityEnvironment();
    const account = await h.newAccount();
    const session = summarizeCheckoutSession(checkoutSession({ accountId: account.id, packId: 'starter' }));
    const workflowId = `evt_hostile_${account.id}`;
    const runOnce = async () => {
      const validation: PurchaseValidation = await env.run(purchase.validatePurchase, {
        session,
        workflowId,
      });
      if (validation.outcome !== 'valid') return validation;
      return env.run(purchase.grantPurchase, validation.grant);
    };
    const first = await runOnce();
    const again = await runOnce();
    expect(first).toMatchObject({ applied: true, receiptKey: `receipt:${session.id}` });
    expect(again).toEqual(first);
    expect(await ledgerRowsFor(h.sql, session.id)).toHaveLength(1);
    // Another workflow (another event for the session) is told it was granted.
    const other = await env.run(purchase.validatePurchase, { session, workflowId: `${workflowId}_other` });
    expect(other).toMatchObject({ outcome: 'already_granted' });
  });
});

/** The scripted SMTP server with the answers these tests need. */
async function rawSmtp(options: { dropDuringData: () => boolean; beforeAccepting?: () => Promise<void> }) {
  const smtp = await scriptedSmtp();
  smtp.state.dropDuringData = options.dropDuringData;
  smtp.state.onMessage = async () => {
    await options.beforeAccepting?.();
    return { reply: '250 queued' };
  };
  return { ...smtp, down: smtp.close };
}

describe('the pooled SMTP transport', () => {
  const message = (n: number) => ({
    to: 'someone@customers.test',
    subject: `receipt ${n}`,
    text: 'thanks',
    messageId: `<receipt-${n}@credits.test>`,
  });

  it('when the SMTP server goes down and comes back, then a send fails meanwhile (not hangs) and the next one after it is delivered', async () => {
    const smtp = await rawSmtp({ dropDuringData: () => false });
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' });
    try {
      await mailer.send(message(1));
      await smtp.down();
      await expect(mailer.send(message(2))).rejects.toThrow();
      await smtp.upAgain();
      await mailer.send(message(3));
      expect(smtp.received.map((data) => /Subject: (receipt \d)/.exec(data)?.[1])).toEqual([
        'receipt 1',
        'receipt 3',
      ]);
    } finally {
      mailer.close();
      await smtp.down().catch(() => {});
    }
  });

  it('when every connection is taken by a message the server holds, then the sends waiting behind it give up and are never sent later', async () => {
    let releaseHeld = () => {};
    const held = new Promise<void>((resolve) => (releaseHeld = resolve));
    const smtp = await rawSmtp({ dropDuringData: () => false, beforeAccepting: () => held });
    const mailer = createMailer({
      smtpUrl: smtp.url,
      from: 'Credits <billing@credits.test>',
      limits: { maxConnections: 1, connectionWaitMs: 200 },
    });
    const subjects = () => smtp.received.map((data) => /Subject: (receipt \d)/.exec(data)?.[1]);
    try {
      const first = mailer.send(message(1));
      const behind = [2, 3, 4].map((n) =>
        mailer.send(message(n)).then(
          () => 'sent',
          (error: Error) => error.message,
        ),
      );
      // Their activities would time out and retry: had they stayed queued, each would go out twice.
      expect(await Promise.all(behind)).toEqual(
        Array(3).fill(expect.stringMatching(/no SMTP connection free/)),
      );
      releaseHeld();
      await first;
      await mailer.send(message(5));
      expect(subjects()).toEqual(['receipt 1', 'receipt 5']);
    } finally {
      mailer.close();
      await smtp.down().catch(() => {});
    }
  });

  it('when the connection drops in the middle of a message, then that send fails (the retry policy sends it again) and the pool recovers', async () => {
    let drop = false;
    const smtp = await rawSmtp({ dropDuringData: () => drop });
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' });
    try {
      await mailer.send(message(1));
      drop = true;
      await expect(mailer.send(message(2))).rejects.toThrow();
      drop = false;
      await mailer.send(message(2));
      expect(smtp.received.map((data) => /Subject: (receipt \d)/.exec(data)?.[1])).toEqual([
        'receipt 1',
        'receipt 2',
      ]);
    } finally {
      mailer.close();
      await smtp.down().catch(() => {});
    }
  });
});

describe('a purchase whose database steps are local activities', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when an approval names an account that does not exist, then the grant fails at once and the purchase goes back to the reviewer', async () => {
    const session = checkoutSession({ accountId: `acct_missing_${Date.now()}`, packId: 'starter' });
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
      what: 'the purchase held',
    });
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops@example.com', credits: 100 });
    const status = await waitUntil(
      async () => {
        const current = await handle.query(statusQuery);
        return current.review !== null && current.stage === 'held_for_review' ? current : null;
      },
      { what: 'the approval sent back', timeoutMs: 20_000 },
    );
    // The reviewer is told why the approval did not grant.
    expect(status).toMatchObject({
      ledgerEntryId: null,
      reason: expect.stringMatching(/approved, but account .* does not exist/),
    });
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(0);
    await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops@example.com' });
    await expect(handle.result()).resolves.toMatchObject({ stage: 'rejected' });
  });
});
