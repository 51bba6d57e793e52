import { NativeConnection, type Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createMailer } from '../../email/mailer';
import { DEFAULT_OUTBOUND_WEBHOOK_SETTINGS } from '../../activities/outbound-webhooks/dispatcher';
import { temporalDataConverter } from '../../config/payload-codec';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { endpointUrlProblem } from '../../domain/outbound-events';
import {
  webhookDispatcherStatusQuery,
  webhookDispatcherWorkflowId,
} from '../../workflows/outbound-webhooks/contract';
import { createWorker } from '../../worker/create-worker';
import { temporalWorkflowDirectory } from '../../worker/maintenance-schedule';
import { startOutboundWebhookKicker } from '../../temporal/outbound-webhook-kicker';
import { grantedPurchase } from '../support/billing';
import { startHarness, TEST_OUTBOX_AGES, type Harness } from '../support/harness';
import { waitUntil } from '../support/wait';

/**
 * The verification snippet the documentation gives clients (docs/outbound-webhooks.md), run as they would run it: with the
 * `standardwebhooks` package from npm, none of this project's code. True when it verifies.
 */
function documentedVerifier(): Verifier {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'docs', 'outbound-webhooks.md'), 'utf8');
  const block = /```js\n([\s\S]*?function verifyBillingWebhook[\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('docs/outbound-webhooks.md has no verifyBillingWebhook snippet');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval, @typescript-eslint/no-unsafe-call -- the documentation's own code, verbatim
  const verifyBillingWebhook = new Function('require', `${block}\nreturn verifyBillingWebhook;`)(require) as (
    rawBody: string,
    headers: Record<string, string>,
    secret: string,
  ) => unknown;
  return (rawBody, headers, secret) => {
    try {
      verifyBillingWebhook(rawBody, headers, secret);
      return true;
    } catch (error) {
      if ((error as Error).name === 'WebhookVerificationError') return false;
      throw error;
    }
  };
}

/** A delivery as `GET …/deliveries` lists it. */
interface ListedDelivery {
  id: number;
  accountId: string;
  status: string;
  attempts: number;
  recentAttempts: Array<{
    succeeded: boolean;
    responseStatus: number | null;
    error: string | null;
    responseExcerpt: string | null;
    manual: boolean;
  }>;
}

type Verifier = (rawBody: string, headers: Record<string, string>, secret: string) => boolean;

/** The headers a Standard Webhooks receiver reads. */
const SIGNED_HEADERS = ['webhook-id', 'webhook-timestamp', 'webhook-signature'];

interface Received {
  eventId: string;
  type: string;
  accountId: string;
  body: string;
  /** The Standard Webhooks headers received. */
  headers: Record<string, string>;
  answered: number;
}

/** A client's endpoint on 127.0.0.1: answers what it is told to, and keeps every request. */
class Receiver {
  readonly requests: Received[] = [];
  /** Answer this status to the next N requests, then 200. */
  private failures = 0;
  private failWith = 500;
  hang = false;
  private readonly hung: ServerResponse[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<Receiver> {
    let receiver: Receiver | null = null;
    const server = createServer((req, res) => receiver?.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    receiver = new Receiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`);
    return receiver;
  }

  failNext(count: number, status = 500) {
    this.failures = count;
    this.failWith = status;
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const event = JSON.parse(body) as { id: string; type: string; account_id: string };
      if (this.hang) {
        this.hung.push(res);
        return;
      }
      const answered = this.failures > 0 ? this.failWith : 200;
      if (this.failures > 0) this.failures -= 1;
      this.requests.push({
        eventId: event.id,
        type: event.type,
        accountId: event.account_id,
        body,
        headers: Object.fromEntries(SIGNED_HEADERS.map((name) => [name, String(req.headers[name] ?? '')])),
        answered,
      });
      res
        .writeHead(answered, { 'content-type': 'text/plain' })
        .end(answered === 200 ? 'ok' : 'x'.repeat(5000));
    });
  }

  /** What the endpoint accepted (answered 2xx) for these accounts, in arrival order. */
  accepted(accountIds: string[]) {
    return this.requests.filter((r) => r.answered === 200 && accountIds.includes(r.accountId));
  }

  async close() {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('outbound webhooks', () => {
  let h: Harness;
  let worker: { instance: Worker; running: Promise<void>; connection: NativeConnection };
  let kicker: { close: () => Promise<void> } | null = null;
  const receivers: Receiver[] = [];
  const ours = new Set<string>();
  const verify = documentedVerifier();

  async function startKicker() {
    kicker = await startOutboundWebhookKicker({
      sql: h.sql,
      client: h.temporal,
      taskQueue: h.config.temporal.taskQueue,
      logger: { warn: () => {} },
      serves: (id) => ours.has(id),
    });
  }

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    const connection = await NativeConnection.connect({ address: h.config.temporal.address });
    const mailer = createMailer({ smtpUrl: h.smtp.url, from: 'Credits <billing@credits.test>' });
    const instance = await createWorker({
      connection,
      namespace: h.config.temporal.namespace,
      taskQueue: h.config.temporal.taskQueue,
      workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE ?? '' },
      dataConverter: temporalDataConverter(h.config.temporalPayloads),
      dependencies: {
        sql: h.sql,
        mailer,
        invoicePayments: null,
        workflows: temporalWorkflowDirectory(h.temporal),
        config: {
          stripe: h.config.stripe,
          emailDomain: 'credits.test',
          outbox: TEST_OUTBOX_AGES,
          secretKeys: h.config.temporalPayloads.keyRing,
          // Short waits, so that retries happen within a test; a long poll, so that only the
          // safety-net test relies on it.
          outboundWebhooks: {
            ...DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
            attemptTimeoutMs: 1_500,
            retryInitialMs: 200,
            retryMaxIntervalMs: 1_000,
            retryWindowMs: 10 * 60_000,
            pollIntervalMs: 3_000,
          },
        },
      },
    });
    worker = { instance, running: instance.run(), connection };
    await startKicker();
  });

  afterAll(async () => {
    // Other files' events fan out to every endpoint: leave none behind.
    for (const id of ours) await h.api('DELETE', `/v1/webhook-endpoints/${id}`);
    await kicker?.close();
    worker?.instance.shutdown();
    await worker?.running;
    await worker?.connection.close();
    for (const receiver of receivers) await receiver.close();
    await h?.close();
  });

  async function receiver() {
    const started = await Receiver.start();
    receivers.push(started);
    return started;
  }

  async function endpoint(url: string, eventTypes?: string[]) {
    const created = await h.api('POST', '/v1/webhook-endpoints', {
      url,
      ...(eventTypes ? { eventTypes } : {}),
    });
    expect(created.status).toBe(201);
    ours.add(created.body.id);
    return created.body as { id: string; secret: string; eventTypes: string[] };
  }

  async function fundedAccount(credits: number) {
    const account = await h.newAccount();
    const grant = await h.api('POST', `/v1/accounts/${account.id}/grants`, {
      amount: credits,
      category: 'paid',
      reason: 'opening credits',
      idempotencyKey: `open-${account.id}`,
    });
    expect(grant.status).toBe(201);
    return account;
  }

  const debit = (accountId: string, key: string, amount = 1) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, { amount, idempotencyKey: key, reason: 'job' });

  async function deliveries(endpointId: string, query = '') {
    const page = await h.api('GET', `/v1/webhook-endpoints/${endpointId}/deliveries${query}`);
    expect(page.status).toBe(200);
    return page.body as { deliveries: ListedDelivery[]; nextCursor: string | null };
  }

  it('when the receiver fails and then recovers, then it gets every event once per ID, signed as documented, and each account in order', async () => {
    const rx = await receiver();
    const ep = await endpoint(rx.url, ['credits.granted', 'credits.debited']);
    rx.failNext(4);
    const a = await fundedAccount(100);
    const b = await fundedAccount(100);
    for (let i = 1; i <= 3; i += 1) {
      expect((await debit(a.id, `a-${i}`)).status).toBe(201);
      expect((await debit(b.id, `b-${i}`)).status).toBe(201);
    }
    const accepted = await waitUntil(
      () => {
        const got = rx.accepted([a.id, b.id]);
        return new Set(got.map((r) => r.eventId)).size === 8 ? got : null;
      },
      { timeoutMs: 90_000, what: '8 events accepted' },
    );

    expect(rx.requests.some((r) => r.answered === 500)).toBe(true);
    expect(accepted).toHaveLength(8);
    for (const request of accepted) {
      expect(verify(request.body, request.headers, ep.secret)).toBe(true);
      expect(request.headers['webhook-id']).toBe(request.eventId);
    }
    const someoneElse = `whsec_${randomBytes(32).toString('base64')}`;
    expect(verify(accepted[0]!.body, accepted[0]!.headers, someoneElse)).toBe(false);
    expect(verify(`${accepted[0]!.body} `, accepted[0]!.headers, ep.secret)).toBe(false);
    // The ID is signed too: the same body and signature under another event's ID do not verify.
    const [first, second] = accepted;
    expect(verify(first!.body, { ...first!.headers, 'webhook-id': second!.eventId }, ep.secret)).toBe(false);

    // Each account's events arrive in the order of its ledger.
    for (const account of [a, b]) {
      const ledger = await h.sql<{ business_key: string; delta: string }[]>`
        SELECT business_key, delta FROM credit_ledger WHERE account_id = ${account.id} ORDER BY id`;
      const expected = ledger.map((row) =>
        outboundEventId(Number(row.delta) > 0 ? 'credits.granted' : 'credits.debited', row.business_key),
      );
      expect(accepted.filter((r) => r.accountId === account.id).map((r) => r.eventId)).toEqual(expected);
    }
    const envelope = JSON.parse(accepted.find((r) => r.type === 'credits.debited')!.body);
    expect(envelope).toMatchObject({
      object: 'event',
      api_version: '2026-12-01',
      data: { kind: 'debit', credits: 1, delta: -1 },
    });

    // The attempts are listed: the refusals with their status and a short excerpt, then success.
    const listed = (await deliveries(ep.id)).deliveries.filter((d) => [a.id, b.id].includes(d.accountId));
    expect(listed).toHaveLength(8);
    expect(listed.every((d) => d.status === 'delivered')).toBe(true);
    const retried = listed.filter((d) => d.attempts > 1);
    expect(retried.length).toBeGreaterThan(0);
    const refused = retried[0]!.recentAttempts.find((attempt) => !attempt.succeeded);
    expect(refused).toMatchObject({ responseStatus: 500, error: 'answered HTTP 500', manual: false });
    expect(refused?.responseExcerpt?.length).toBeLessThanOrEqual(300);
    expect(retried[0]!.recentAttempts[0]).toMatchObject({ succeeded: true, responseStatus: 200 });
  });

  it('when one endpoint hangs, then another endpoint still gets every event, and no debit waits', async () => {
    const stuck = await receiver();
    stuck.hang = true;
    const healthy = await receiver();
    const slow = await endpoint(stuck.url, ['credits.granted', 'credits.debited']);
    const fine = await endpoint(healthy.url, ['credits.granted', 'credits.debited']);
    const account = await fundedAccount(50);
    for (let i = 1; i <= 3; i += 1) expect((await debit(account.id, `hang-${i}`)).status).toBe(201);

    await waitUntil(() => healthy.accepted([account.id]).length === 4, {
      timeoutMs: 60_000,
      what: 'the healthy endpoint',
    });
    const slowDeliveries = (await deliveries(slow.id)).deliveries.filter((d) => d.accountId === account.id);
    expect(slowDeliveries).toHaveLength(4);
    expect(slowDeliveries.every((d) => d.status === 'pending')).toBe(true);
    expect(
      (await deliveries(fine.id)).deliveries.filter((d) => d.accountId === account.id).map((d) => d.status),
    ).toEqual(['delivered', 'delivered', 'delivered', 'delivered']);
    // The hanging endpoint's attempts time out and are recorded as such.
    await waitUntil(
      async () => {
        const [head] = (await deliveries(slow.id)).deliveries
          .filter((d) => d.accountId === account.id)
          .slice(-1);
        return head?.recentAttempts.some((attempt) => attempt.error?.startsWith('timeout'));
      },
      { timeoutMs: 60_000, what: 'a timed-out attempt' },
    );
    await h.api('PATCH', `/v1/webhook-endpoints/${slow.id}`, { enabled: false });
  });

  it('when a delivered delivery is re-sent by hand, then the receiver gets the same event again, marked manual in its attempts', async () => {
    const rx = await receiver();
    const ep = await endpoint(rx.url);
    const account = await fundedAccount(10);
    await waitUntil(() => rx.accepted([account.id]).length === 1, {
      timeoutMs: 60_000,
      what: 'the first delivery',
    });
    const [delivery] = (await deliveries(ep.id)).deliveries.filter((d) => d.accountId === account.id);
    if (!delivery) throw new Error('no delivery listed');
    const resent = await h.api('POST', `/v1/webhook-endpoints/${ep.id}/deliveries/${delivery.id}/resend`);
    expect(resent.status).toBe(202);
    expect(resent.body).toMatchObject({ id: delivery.id, status: 'pending' });
    await waitUntil(() => rx.accepted([account.id]).length === 2, { timeoutMs: 60_000, what: 'the re-send' });
    const [first, again] = rx.accepted([account.id]);
    expect(again!.eventId).toBe(first!.eventId);
    expect(verify(again!.body, again!.headers, ep.secret)).toBe(true);
    expect(again!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    const [after] = (await deliveries(ep.id)).deliveries.filter((d) => d.id === delivery.id);
    expect(after).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(after!.recentAttempts.map((attempt) => attempt.manual)).toEqual([true, false]);
  });

  it('when a purchase is granted, then credits.granted and purchase.completed arrive, in that order', async () => {
    const rx = await receiver();
    await endpoint(rx.url);
    const purchase = await grantedPurchase(h, 'starter');
    const got = await waitUntil(
      () => (rx.accepted([purchase.account.id]).length === 2 ? rx.accepted([purchase.account.id]) : null),
      {
        timeoutMs: 60_000,
        what: 'the purchase events',
      },
    );
    expect(got.map((r) => r.type)).toEqual(['credits.granted', 'purchase.completed']);
    expect(JSON.parse(got[1]!.body).data).toMatchObject({
      purchase_id: purchase.session.id,
      status: 'completed',
      credits: purchase.terms.credits,
    });
  });

  it('when the same change is emitted twice (a retried grant, a retried transaction), then there is one event and one delivery', async () => {
    const rx = await receiver();
    const ep = await endpoint(rx.url);
    const account = await h.newAccount();
    const body = { amount: 5, reason: 'twice', idempotencyKey: `twice-${account.id}` };
    expect((await h.api('POST', `/v1/accounts/${account.id}/grants`, body)).status).toBe(201);
    expect((await h.api('POST', `/v1/accounts/${account.id}/grants`, body)).status).toBe(201);
    const id = outboundEventId('balance.low', `twice:${account.id}`);
    for (let i = 0; i < 2; i += 1) {
      await h.sql.begin((tx) =>
        queueOutboundEvent(tx, { id, type: 'balance.low', accountId: account.id, data: { n: i } }),
      );
    }
    const events = await h.sql`SELECT id, data FROM outbound_events WHERE account_id = ${account.id}`;
    expect(events).toHaveLength(2);
    expect(events.find((e) => e.id === id)?.data).toEqual({ n: 0 });
    await waitUntil(() => rx.accepted([account.id]).length === 2, { timeoutMs: 60_000, what: 'both events' });
    expect((await deliveries(ep.id)).deliveries.filter((d) => d.accountId === account.id)).toHaveLength(2);
  });

  it('when an event commits while no kick can reach its dispatcher, then the dispatcher finds it on its own', async () => {
    const rx = await receiver();
    const ep = await endpoint(rx.url);
    // Let the dispatcher start and settle into its wait, then lose every kick.
    const handle = h.temporal.workflow.getHandle(webhookDispatcherWorkflowId(ep.id));
    await waitUntil(async () => {
      const status = await handle.query(webhookDispatcherStatusQuery);
      return status.looks >= 1 && status.stage === 'waiting';
    });
    await kicker?.close();
    kicker = null;
    try {
      const account = await h.newAccount();
      await h.sql.begin((tx) =>
        queueOutboundEvent(tx, {
          id: outboundEventId('balance.low', `unkicked:${account.id}`),
          type: 'balance.low',
          accountId: account.id,
          data: { threshold: 10, available: 3 },
        }),
      );
      await waitUntil(() => rx.accepted([account.id]).length === 1, {
        timeoutMs: 60_000,
        what: 'the polled delivery',
      });
    } finally {
      await startKicker();
    }
  });

  it('when an endpoint is paused, then it is sent nothing that happens meanwhile, and once enabled it gets what follows; without asking for credits.debited, it gets no debits', async () => {
    const rx = await receiver();
    const ep = await endpoint(rx.url);
    expect(ep.eventTypes).not.toContain('credits.debited');
    const paused = await h.api('PATCH', `/v1/webhook-endpoints/${ep.id}`, { enabled: false });
    expect(paused.body).toMatchObject({ enabled: false });
    const account = await fundedAccount(10);
    expect((await deliveries(ep.id)).deliveries.filter((d) => d.accountId === account.id)).toEqual([]);
    expect((await h.api('PATCH', `/v1/webhook-endpoints/${ep.id}`, { enabled: true })).status).toBe(200);
    expect((await debit(account.id, `resumed-${account.id}`)).status).toBe(201);
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: outboundEventId('balance.low', `resumed:${account.id}`),
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 20, available: 9 },
      }),
    );
    // balance.low comes after the debit in the account's order: once it is in, a debit would be too.
    await waitUntil(() => rx.accepted([account.id]).some((r) => r.type === 'balance.low'), {
      timeoutMs: 60_000,
      what: 'the event after the pause',
    });
    expect(rx.accepted([account.id]).map((r) => r.type)).toEqual(['balance.low']);
  });

  it('when bad input reaches the endpoints API, then each gets its stable error and nothing changes', async () => {
    const before = (await h.api('GET', '/v1/webhook-endpoints')).body.endpoints.length;
    const refusals: Array<[unknown, number, string]> = [
      [{ url: 'ftp://127.0.0.1/hooks' }, 422, 'webhook_url_not_allowed'],
      [{ url: 'http://user:pw@127.0.0.1/hooks' }, 422, 'webhook_url_not_allowed'],
      [{ url: 'http://backend.example.com/hooks' }, 422, 'webhook_url_not_allowed'],
      [{ url: 'not a url' }, 422, 'webhook_url_not_allowed'],
      [{ url: `https://backend.example.com/${'a'.repeat(3000)}` }, 400, 'invalid_request'],
      [{ url: 'https://backend.example.com/hooks', eventTypes: ['credits.stolen'] }, 400, 'invalid_request'],
      [{ url: 'https://backend.example.com/hooks', eventTypes: [] }, 400, 'invalid_request'],
      [{ url: 'https://backend.example.com/hooks', secret: 'mine' }, 400, 'invalid_request'],
      ['{"url": ', 400, 'malformed_json'],
    ];
    for (const [body, status, code] of refusals) {
      const answer = await h.api('POST', '/v1/webhook-endpoints', body);
      expect([JSON.stringify(body).slice(0, 60), answer.status, answer.body?.error?.code]).toEqual([
        JSON.stringify(body).slice(0, 60),
        status,
        code,
      ]);
    }
    expect((await h.api('GET', '/v1/webhook-endpoints')).body.endpoints.length).toBe(before);

    const rx = await receiver();
    const ep = await endpoint(rx.url);
    const read = await h.api('GET', `/v1/webhook-endpoints/${ep.id}`);
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty('secret');
    expect(JSON.stringify((await h.api('GET', '/v1/webhook-endpoints')).body)).not.toContain(ep.secret);
    const patched = await h.api('PATCH', `/v1/webhook-endpoints/${ep.id}`, { url: 'http://10.0.0.1/hooks' });
    expect([patched.status, patched.body.error.code]).toEqual([422, 'webhook_url_not_allowed']);
    expect((await h.api('PATCH', `/v1/webhook-endpoints/${ep.id}`, {})).status).toBe(400);
    expect((await h.api('GET', `/v1/webhook-endpoints/${ep.id}`)).body).toEqual(read.body);

    const missing = 'we_doesNotExist0000000000';
    expect((await h.api('GET', `/v1/webhook-endpoints/${missing}`)).body.error.code).toBe(
      'webhook_endpoint_not_found',
    );
    expect((await h.api('DELETE', `/v1/webhook-endpoints/${missing}`)).status).toBe(404);
    expect((await h.api('GET', '/v1/webhook-endpoints/not-an-id')).body.error.code).toBe('invalid_request');
    const noDelivery = await h.api('POST', `/v1/webhook-endpoints/${ep.id}/deliveries/999999999/resend`);
    expect([noDelivery.status, noDelivery.body.error.code]).toEqual([404, 'webhook_delivery_not_found']);
    expect((await h.api('GET', `/v1/webhook-endpoints/${ep.id}/deliveries?limit=0`)).status).toBe(400);
    expect((await h.api('GET', `/v1/webhook-endpoints/${ep.id}/deliveries?cursor=%24%24`)).status).toBe(400);
    expect(
      (await h.api('POST', '/v1/webhook-endpoints', { url: rx.url }, 'test_api_key_0123456789abcdef')).status,
    ).toBe(403);

    const deleted = await h.api('DELETE', `/v1/webhook-endpoints/${ep.id}`);
    expect(deleted).toEqual({ status: 200, body: { id: ep.id, deleted: true } });
    const handle = h.temporal.workflow.getHandle(webhookDispatcherWorkflowId(ep.id));
    await expect(handle.result()).resolves.toMatchObject({ ended: 'endpoint_deleted' });
  });

  it('when deliveries are listed page by page, then every one appears once, newest first', async () => {
    const rx = await receiver();
    const ep = await endpoint(rx.url);
    const account = await h.newAccount();
    for (let i = 0; i < 5; i += 1) {
      await h.sql.begin((tx) =>
        queueOutboundEvent(tx, {
          id: outboundEventId('topup.failed', `${account.id}:${i}`),
          type: 'topup.failed',
          accountId: account.id,
          data: { attempt: i },
        }),
      );
    }
    await waitUntil(() => rx.accepted([account.id]).length === 5, {
      timeoutMs: 60_000,
      what: '5 deliveries',
    });
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await deliveries(ep.id, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.deliveries.map((d) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(new Set(seen).size);
    expect([...seen].sort((x, y) => y - x)).toEqual(seen);
    expect(seen.length).toBeGreaterThanOrEqual(5);
  });

  it('when URLs are checked for production, then only HTTPS to public hosts passes', () => {
    expect(endpointUrlProblem('https://backend.example.com/hooks', true)).toBeNull();
    expect(endpointUrlProblem('http://backend.example.com/hooks', true)).toMatch(/https/);
    expect(endpointUrlProblem('https://127.0.0.1/hooks', true)).toMatch(/loopback/);
    expect(endpointUrlProblem('https://169.254.169.254/latest', true)).toMatch(/private/);
    expect(endpointUrlProblem('https://[::1]/hooks', true)).toMatch(/loopback/);
    expect(endpointUrlProblem('http://127.0.0.1:8080/hooks', false)).toBeNull();
    expect(endpointUrlProblem('http://localhost/hooks', false)).toBeNull();
    expect(endpointUrlProblem('javascript:alert(1)', false)).toMatch(/https/);
  });
});
