import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../api/app';
import { createMetrics } from '../../api/metrics';
import { createLogger } from '../../config/logger';
import { createSql } from '../../db/client';
import { freePort } from '../../scripts/local-services';
import { checkoutSession, signPayload, stripeEvent } from '../../stripe/fixtures/index';
import { balanceOf, ledgerRowsFor } from '../support/db';
import {
  ROTATED_WEBHOOK_SECRET,
  startHarness,
  testApiConfig,
  WEBHOOK_SECRET,
  type Harness,
} from '../support/harness';
import { waitUntil } from '../support/wait';
import { temporalDataConverter } from '../../config/payload-codec';

describe('POST /webhooks/stripe', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function post(body: string | Buffer, headers: Record<string, string>) {
    const response = await fetch(`${h.baseUrl}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: response.status, body: (await response.json()) as { error?: { code: string } } };
  }

  async function purchaseEvent() {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    return { account, session, event: stripeEvent('checkout.session.completed', session) };
  }

  /** Bad input changes nothing: no workflow, no ledger row, no balance. */
  async function expectNothingHappened(fixture: Awaited<ReturnType<typeof purchaseEvent>>) {
    await expect(h.temporal.workflow.getHandle(fixture.event.id).describe()).rejects.toThrow(/not found/i);
    expect(await ledgerRowsFor(h.sql, fixture.session.id as string)).toHaveLength(0);
    expect(await balanceOf(h.sql, fixture.account.id)).toBe(0);
  }

  it('when the Stripe-Signature header is missing, then 400 missing_signature and nothing happens', async () => {
    const fixture = await purchaseEvent();
    const response = await post(JSON.stringify(fixture.event), {});
    expect(response).toEqual({
      status: 400,
      body: { error: expect.objectContaining({ code: 'missing_signature' }) },
    });
    await expectNothingHappened(fixture);
  });

  it('when the header is malformed, then 400 invalid_signature', async () => {
    const fixture = await purchaseEvent();
    const response = await post(JSON.stringify(fixture.event), { 'stripe-signature': 'not-a-signature' });
    expect(response.status).toBe(400);
    expect(response.body.error?.code).toBe('invalid_signature');
    await expectNothingHappened(fixture);
  });

  it('when the signature was made with another secret, then 400 invalid_signature', async () => {
    const fixture = await purchaseEvent();
    const payload = JSON.stringify(fixture.event);
    const response = await post(payload, {
      'stripe-signature': signPayload(payload, 'whsec_attacker_secret'),
    });
    expect(response.status).toBe(400);
    expect(response.body.error?.code).toBe('invalid_signature');
    await expectNothingHappened(fixture);
  });

  it('when the body was altered after signing, then 400 invalid_signature', async () => {
    const fixture = await purchaseEvent();
    const payload = JSON.stringify(fixture.event);
    const header = signPayload(payload, WEBHOOK_SECRET);
    const response = await post(payload.replace('"starter"', '"scale"'), { 'stripe-signature': header });
    expect(response.status).toBe(400);
    expect(response.body.error?.code).toBe('invalid_signature');
    await expectNothingHappened(fixture);
  });

  it('when the signature is older than the tolerance, then 400 signature_expired', async () => {
    const fixture = await purchaseEvent();
    const payload = JSON.stringify(fixture.event);
    const tenMinutesAgo = Math.floor(Date.now() / 1000) - 600;
    const response = await post(payload, {
      'stripe-signature': signPayload(payload, WEBHOOK_SECRET, tenMinutesAgo),
    });
    expect(response.status).toBe(400);
    expect(response.body.error?.code).toBe('signature_expired');
    await expectNothingHappened(fixture);
  });

  it('when the event is signed with the second (rotated) secret, then it is accepted', async () => {
    const fixture = await purchaseEvent();
    const response = await h.deliver(fixture.event, ROTATED_WEBHOOK_SECRET);
    expect(response).toEqual({
      status: 200,
      body: { received: true, workflowId: fixture.event.id, status: 'started' },
    });
    await waitUntil(async () => (await balanceOf(h.sql, fixture.account.id)) === 100, { what: 'grant' });
  });

  it('when the signed body is not JSON, then 400 malformed_json', async () => {
    const payload = '{"id": "evt_broken", "object": "event",';
    const response = await post(payload, { 'stripe-signature': signPayload(payload, WEBHOOK_SECRET) });
    expect(response.status).toBe(400);
    expect(response.body.error?.code).toBe('malformed_json');
  });

  it('when a signed event has the wrong shape, then it is rejected for good: 200 rejected, nothing started', async () => {
    const id = `evt_${randomUUID().replaceAll('-', '')}`;
    const payload = JSON.stringify({ id, object: 'event', type: 'checkout.session.completed' });
    const response = await post(payload, { 'stripe-signature': signPayload(payload, WEBHOOK_SECRET) });
    expect(response).toEqual({ status: 200, body: { received: true, workflowId: null, status: 'rejected' } });
    await expect(h.temporal.workflow.getHandle(id).describe()).rejects.toThrow(/not found/i);
  });

  it('when a signed checkout event carries a malformed session, then it is rejected for good and nothing starts', async () => {
    const fixture = await purchaseEvent();
    const broken = stripeEvent('checkout.session.completed', { ...fixture.session, amount_total: 'lots' });
    const payload = JSON.stringify(broken);
    const response = await post(payload, { 'stripe-signature': signPayload(payload, WEBHOOK_SECRET) });
    expect(response).toEqual({ status: 200, body: { received: true, workflowId: null, status: 'rejected' } });
    await expect(h.temporal.workflow.getHandle(broken.id).describe()).rejects.toThrow(/not found/i);
  });

  it('when the body is larger than the limit, then 413 payload_too_large and the process keeps serving', async () => {
    const fixture = await purchaseEvent();
    const huge = JSON.stringify({ ...fixture.event, padding: 'x'.repeat(h.config.webhookMaxBodyBytes) });
    const response = await post(huge, { 'stripe-signature': signPayload(huge, WEBHOOK_SECRET) });
    expect(response.status).toBe(413);
    expect(response.body.error?.code).toBe('payload_too_large');
    await expectNothingHappened(fixture);
    expect((await fetch(`${h.baseUrl}/healthz`)).status).toBe(200);
  });

  it('when Temporal cannot be reached, then 503 temporal_unavailable so that Stripe retries, quickly', async () => {
    const config = testApiConfig({
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      WEBHOOK_TEMPORAL_TIMEOUT_MS: '2000',
    });
    const sql = createSql(config.databaseUrl, { max: 2 });
    const connection = Connection.lazy({ address: config.temporal.address, connectTimeout: '1 second' });
    const app = createApp({
      config,
      sql,
      temporal: new Client({ connection, dataConverter: temporalDataConverter(config.temporalPayloads) }),
      stripe: null,
      logger: createLogger({ level: 'silent', name: 'test' }),
      metrics: createMetrics(),
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const fixture = await purchaseEvent();
      const payload = JSON.stringify(fixture.event);
      const started = Date.now();
      const response = await fetch(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'stripe-signature': signPayload(payload, WEBHOOK_SECRET),
          },
          body: payload,
        },
      );
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'temporal_unavailable',
      );
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await ledgerRowsFor(h.sql, fixture.session.id as string)).toHaveLength(0);
    } finally {
      server.close();
      await sql.end();
    }
  });
});
