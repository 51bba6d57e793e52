import { randomUUID } from 'node:crypto';
import { openApiPath } from '../../api/http/openapi';
import { API_ROUTES } from '../../api/routes/index';
import { checkedBalance } from '../support/billing';
import { ADMIN_API_KEY, API_KEY, startHarness, type Harness } from '../support/harness';

const READ_KEY = 'test_read_key_0123456789abcdef';
const WRITE_KEY = 'test_write_key_0123456789abcdef';
const KEY_OF_ROLE: Record<string, string> = { read: READ_KEY, write: WRITE_KEY, admin: ADMIN_API_KEY };
const ROLE_BELOW: Record<string, string | undefined> = { read: undefined, write: 'read', admin: 'write' };

describe('API keys with names and roles', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      worker: false,
      configOverrides: {
        BILLING_API_KEYS: [
          API_KEY,
          `reader:read:${READ_KEY}`,
          `backend:write:${WRITE_KEY}`,
          `ops:admin:${ADMIN_API_KEY}`,
        ].join(','),
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when every declared route is called without a key, then 401; with a key one role below its own, then 403 insufficient_role, as the document says; with its own role, it gets past the check', async () => {
    const document = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as any;
    const mismatches: string[] = [];
    for (const route of API_ROUTES) {
      const { method, role } = route;
      const name = `${method} ${route.path}`;
      // Path parameters no route accepts: nothing is ever found, created or changed.
      const url = route.path.replace(/:\w+/g, '~');
      const body = method === 'post' ? {} : undefined;
      const documented = document.paths[openApiPath(route.path)]?.[method];
      if (documented?.['x-required-role'] !== role)
        mismatches.push(`${name}: the document says another role`);
      const anonymous = await h.api(method.toUpperCase(), url, body, null);
      if (anonymous.status !== 401) mismatches.push(`${name} without a key: ${anonymous.status}`);
      const below = ROLE_BELOW[role];
      if (below) {
        const refused = await h.api(method.toUpperCase(), url, body, KEY_OF_ROLE[below]);
        if (refused.status !== 403 || refused.body?.error?.code !== 'insufficient_role') {
          mismatches.push(`${name} with a ${below} key: ${refused.status}`);
        }
        if (!documented?.responses['403']) mismatches.push(`${name} documents no 403`);
      }
      const allowed = await h.api(method.toUpperCase(), url, body, KEY_OF_ROLE[role]);
      if ([401, 403].includes(allowed.status))
        mismatches.push(`${name} with a ${role} key: ${allowed.status}`);
    }
    expect(mismatches).toEqual([]);
    expect(API_ROUTES.length).toBeGreaterThanOrEqual(30);
  });

  it('when a read key tries to create an account, then 403 names the role needed and nothing is created', async () => {
    const id = `acct_${randomUUID()}`;
    const refused = await h.api('POST', '/v1/accounts', { id, email: 'a@b.example' }, READ_KEY);
    expect(refused).toEqual({
      status: 403,
      body: {
        error: {
          code: 'insufficient_role',
          message: 'This route needs an API key with the write role; this key has the read role.',
          details: { needed: 'write', has: 'read' },
        },
      },
    });
    expect(JSON.stringify(refused.body)).not.toContain(READ_KEY);
    expect((await h.api('GET', `/v1/accounts/${id}`, undefined, READ_KEY)).status).toBe(404);
  });

  it('when a bare key (the form without name and role) is used, then it works as a write key', async () => {
    const id = `acct_${randomUUID()}`;
    expect((await h.api('POST', '/v1/accounts', { id, email: 'a@b.example' }, API_KEY)).status).toBe(201);
    expect((await h.api('GET', `/v1/accounts/${id}`, undefined, API_KEY)).status).toBe(200);
    const grant = await h.api(
      'POST',
      `/v1/accounts/${id}/grants`,
      { amount: 5, reason: 'try', idempotencyKey: 'bare-1' },
      API_KEY,
    );
    expect(grant).toMatchObject({ status: 403, body: { error: { code: 'insufficient_role' } } });
    expect((await h.api('GET', `/v1/accounts/${id}`, undefined, API_KEY)).body.balance).toBe(0);
  });

  it('when a named key grants credits, then the grant records its name, not its secret', async () => {
    const id = `acct_${randomUUID()}`;
    await h.api('POST', '/v1/accounts', { id, email: 'a@b.example' }, WRITE_KEY);
    const grant = await h.api(
      'POST',
      `/v1/accounts/${id}/grants`,
      { amount: 5, reason: 'welcome', idempotencyKey: 'named-1' },
      ADMIN_API_KEY,
    );
    expect(grant).toMatchObject({ status: 201, body: { createdBy: 'ops' } });
  });

  it.each([
    ['a wrong key', 'not_a_key_of_this_service_0123'],
    ['a key that differs in one character', `${ADMIN_API_KEY.slice(0, -1)}X`],
    ['no key', null],
  ])('when %s is sent to an admin route, then 401 unauthorized (not 403)', async (_name, key) => {
    const response = await h.api('GET', '/v1/audit', undefined, key);
    expect(response).toEqual({
      status: 401,
      body: { error: expect.objectContaining({ code: 'unauthorized' }) },
    });
  });

  describe('a secret almost right', () => {
    it.each([
      ['the admin secret with a suffix', `${ADMIN_API_KEY}x`],
      ['the admin secret less its last character', ADMIN_API_KEY.slice(0, -1)],
      ['the admin secret in upper case', ADMIN_API_KEY.toUpperCase()],
      ['the name:role:secret entry itself', `ops:admin:${ADMIN_API_KEY}`],
    ])('when the bearer is %s, then 401 and no grant is made', async (_what, bearer) => {
      const account = await h.newAccount();
      const answer = await h.api(
        'POST',
        `/v1/accounts/${account.id}/grants`,
        { amount: 10, reason: 'x', idempotencyKey: `g-${randomUUID()}` },
        bearer,
      );
      expect(answer.status).toBe(401);
      expect(await checkedBalance(h, account.id)).toBe(0);
    });
  });
});
