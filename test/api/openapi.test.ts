import { openApiPath } from '../../api/http/openapi';
import { DOCUMENTED_ROUTES } from '../../api/routes/index';
import { startHarness, type Harness } from '../support/harness';

describe('API description', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when /openapi.json is fetched, then it describes exactly the declared routes, with the schemas the handlers validate with', async () => {
    const response = await fetch(`${h.baseUrl}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as any;
    expect(document.openapi).toBe('3.1.0');
    const described = Object.entries<Record<string, unknown>>(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    const declared = DOCUMENTED_ROUTES.map((route) => `${route.method} ${openApiPath(route.path)}`);
    expect(described.sort()).toEqual(declared.sort());
    expect(described).toEqual(
      expect.arrayContaining([
        'post /webhooks/stripe',
        'get /healthz',
        'post /codec/decode',
        'get /v1/accounts/{id}',
        'post /v1/webhook-endpoints/{endpointId}/deliveries/{deliveryId}/resend',
      ]),
    );
    const debit = document.components.schemas.CreateDebit;
    expect(debit.required).toEqual(expect.arrayContaining(['amount', 'idempotencyKey', 'reason']));
    expect(debit.additionalProperties).toBe(false);
    expect(Object.keys(document.paths['/v1/accounts/{id}/debits'].post.responses)).toEqual(
      expect.arrayContaining(['201', '400', '401', '402', '404', '409']),
    );
    expect(document.paths['/v1/checkout/sessions'].post.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ in: 'header', name: 'idempotency-key' })]),
    );
  });

  it('when /docs is opened, then a human-readable reference page is served', async () => {
    const response = await fetch(`${h.baseUrl}/docs/`);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('Credits billing API');
  });

  it.each([
    ['GET', '/v1/packs'],
    ['POST', '/v1/accounts'],
    ['GET', '/v1/accounts/acct_1'],
    ['GET', '/v1/accounts/acct_1/ledger'],
    ['POST', '/v1/accounts/acct_1/debits'],
    ['POST', '/v1/checkout/sessions'],
    ['GET', '/v1/purchases/cs_test_1'],
  ])('when %s %s is called without an API key, then 401 unauthorized', async (method, path) => {
    const response = await h.api(method, path, method === 'POST' ? {} : undefined, null);
    expect(response).toEqual({
      status: 401,
      body: { error: expect.objectContaining({ code: 'unauthorized' }) },
    });
  });
});
