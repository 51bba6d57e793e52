import { randomUUID } from 'node:crypto';
import { createSql } from '../../db/client';
import { API_KEY, startAppWith, startHarness, type Harness } from '../support/harness';

describe('accounts API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const newId = () => `acct_${randomUUID()}`;

  it.each([
    ['no Authorization header', null],
    ['a wrong key', 'not-the-right-key-at-all'],
    ['a key one character short', 'test_api_key_0123456789abcde'],
  ])('when a request has %s, then 401 unauthorized and nothing is created', async (_name, key) => {
    const id = newId();
    const response = await h.api('POST', '/v1/accounts', { id, email: 'a@example.com' }, key);
    expect(response).toEqual({
      status: 401,
      body: { error: expect.objectContaining({ code: 'unauthorized' }) },
    });
    expect((await h.api('GET', `/v1/accounts/${id}`)).status).toBe(404);
  });

  it('when an account is created, then 201 with a zero balance, and 200 with the same account the second time', async () => {
    const id = newId();
    const created = await h.api('POST', '/v1/accounts', { id, email: 'first@example.com' });
    const empty = { balance: 0, available: 0, held: 0, debt: 0, credits: { paid: 0, promotional: 0 } };
    expect(created).toEqual({ status: 201, body: { id, email: 'first@example.com', ...empty } });
    const again = await h.api('POST', '/v1/accounts', { id, email: 'second@example.com' });
    expect(again).toEqual({ status: 200, body: { id, email: 'first@example.com', ...empty } });
    expect(await h.api('GET', `/v1/accounts/${id}`)).toEqual({ status: 200, body: created.body });
  });

  it.each([
    ['a missing email', { id: 'acct_x' }],
    ['an invalid email', { id: 'acct_x', email: 'nope' }],
    ['an ID with spaces', { id: 'has space', email: 'a@example.com' }],
    ['an unknown field', { id: 'acct_x', email: 'a@example.com', balance: 1000 }],
    ['a non-object body', [1, 2, 3]],
  ])('when the body has %s, then 400 invalid_request', async (_name, body) => {
    const response = await h.api('POST', '/v1/accounts', body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('when the JSON is malformed, then 400 malformed_json', async () => {
    const response = await h.api('POST', '/v1/accounts', '{"id": ');
    expect(response).toEqual({
      status: 400,
      body: { error: expect.objectContaining({ code: 'malformed_json' }) },
    });
  });

  it('when the body is oversized, then 413 payload_too_large', async () => {
    const response = await h.api('POST', '/v1/accounts', {
      id: 'acct_big',
      email: `${'a'.repeat(40_000)}@example.com`,
    });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('payload_too_large');
  });

  it('when an account does not exist, then 404 account_not_found', async () => {
    const response = await h.api('GET', `/v1/accounts/${newId()}`);
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('account_not_found');
  });

  it('when the packs are listed, then the active catalog comes back with prices in cents', async () => {
    const response = await h.api('GET', '/v1/packs');
    expect(response.status).toBe(200);
    expect(response.body.packs).toEqual(
      expect.arrayContaining([
        { id: 'starter', name: 'Starter pack', credits: 100, amountCents: 900, currency: 'usd' },
      ]),
    );
    expect(response.body.packs.length).toBeGreaterThanOrEqual(3);
  });

  it('when a purchase is unknown or its ID malformed, then 404 or 400', async () => {
    expect((await h.api('GET', '/v1/purchases/cs_test_doesnotexist')).status).toBe(404);
    const malformed = await h.api('GET', '/v1/purchases/not-a-session');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('invalid_request');
  });

  it('when a route does not exist, then 404 route_not_found as JSON', async () => {
    const response = await h.api('GET', '/v1/nothing-here');
    expect(response).toEqual({
      status: 404,
      body: { error: expect.objectContaining({ code: 'route_not_found' }) },
    });
  });

  it('when the probes are called, then liveness, readiness with both checks, and Prometheus metrics answer', async () => {
    expect(await h.api('GET', '/healthz', undefined, null)).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await h.api('GET', '/readyz', undefined, null)).toEqual({
      status: 200,
      body: { status: 'ready', checks: { postgres: 'ok', temporal: 'ok' } },
    });
    const metrics = await fetch(`${h.baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('billing_http_request_duration_seconds');
  });

  it('when the database is unreachable, then /v1 answers 503 database_unavailable, not 500', async () => {
    // Nothing listens on port 1: every query fails to connect.
    const sql = createSql('postgres://postgres@127.0.0.1:1/none', { max: 1 });
    const withoutDatabase = await startAppWith(h, { sql });
    try {
      const response = await fetch(`${withoutDatabase.url}/v1/accounts/${newId()}`, {
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error: { code: 'database_unavailable', message: expect.any(String) },
      });
    } finally {
      await withoutDatabase.close();
      await sql.end({ timeout: 1 });
    }
  });
});
