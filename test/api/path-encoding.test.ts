import { API_ROUTES } from '../../api/routes/index';
import { checkedBalance, grantDirectly } from '../support/billing';
import { ADMIN_API_KEY, startHarness, type Harness } from '../support/harness';
import { TEST_CODEC_TOKEN } from '../support/payload-keys';

/**
 * A path whose percent-encoding is not valid UTF-8 cannot name anything: every route with a path
 * parameter answers 400 `malformed_path` before its handler runs, so nothing changes.
 */
describe('malformed percent-encoding in paths', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  // A truncated sequence, a non-hex escape, an overlong (forbidden) encoding of '/'.
  const MALFORMED = ['%E0%A4%A', '%ZZ', '%C0%AF'];

  it('when any path parameter of any declared route is malformed percent-encoding, then 400 malformed_path and nothing changes', async () => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'funds', amount: 100 });
    // Valid values for the other parameters, so that only the malformed one can be refused.
    const valid: Record<string, string> = {
      id: account.id,
      grantId: '1',
      reservationId: `rsv_${'0'.repeat(32)}`,
      checkoutSessionId: 'cs_test_1',
      workflowId: 'evt_1',
      endpointId: 'we_1',
      deliveryId: '1',
    };
    const withParameters = API_ROUTES.filter((route) => route.path.includes('/:'));
    expect(withParameters.length).toBeGreaterThanOrEqual(20);
    const wrong: string[] = [];
    for (const route of withParameters) {
      const names = [...route.path.matchAll(/:(\w+)/g)].map((match) => match[1] ?? '');
      for (const name of names) {
        for (const malformed of MALFORMED) {
          const path = route.path.replace(/:(\w+)/g, (_all, other: string) =>
            other === name ? malformed : (valid[other] ?? 'x'),
          );
          const body = ['post', 'put', 'patch'].includes(route.method) ? {} : undefined;
          const answer = await h.api(route.method.toUpperCase(), path, body, ADMIN_API_KEY);
          if (answer.status !== 400 || answer.body?.error?.code !== 'malformed_path') {
            wrong.push(`${route.method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(await checkedBalance(h, account.id)).toBe(100);
    const ledger = await h.api('GET', `/v1/accounts/${account.id}/ledger`);
    expect(ledger.body.entries).toHaveLength(1);
  });

  it.each(MALFORMED)(
    'when the codec token or operation in the path is %s, then 400 malformed_path',
    async (malformed) => {
      for (const path of [`/codec/${malformed}/decode`, `/codec/${malformed}`, `/codec/x/${malformed}`]) {
        const answer = await h.api('POST', path, { payloads: [] }, TEST_CODEC_TOKEN);
        expect({ path, ...answer }).toEqual({
          path,
          status: 400,
          body: { error: { code: 'malformed_path', message: expect.any(String) } },
        });
      }
    },
  );
});
