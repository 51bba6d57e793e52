import { randomUUID } from 'node:crypto';
import { checkedBalance, grantDirectly } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

/**
 * Reasons, notes and descriptions are stored and shown to people (the ledger, the audit log, the
 * review desk, webhook payloads): a bidirectional control or an invisible character in them is
 * refused with 400 invalid_request on every route that takes one, and nothing changes.
 */
describe('bidirectional and invisible characters in text a person wrote', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const HOSTILE: Array<[string, string, RegExp]> = [
    ['a right-to-left override (U+202E)', 'refund \u202e001 stidere', /bidirectional/],
    ['a first-strong isolate (U+2068)', 'refund \u2068credits\u2069', /bidirectional/],
    ['a zero-width space (U+200B)', 'ref\u200bund', /invisible/],
    ['a byte order mark (U+FEFF)', '\ufeffrefund', /invisible/],
    ['a zero-width joiner that joins nothing', 'refund\u200d', /invisible/],
  ];

  const auditCount = async () => Number((await h.sql`SELECT count(*)::int AS n FROM audit_log`)[0]?.n);

  function expectRefused(answer: { status: number; body: any }, field: string, rule: RegExp) {
    expect(answer).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(answer.body.error.message).toMatch(new RegExp(`^${field}: `));
    expect(answer.body.error.message).toMatch(rule);
  }

  it.each(HOSTILE)(
    'when a debit, a grant, a void or a capture gives a reason with %s, then 400 invalid_request names the rule and no credit moves',
    async (_what, text, rule) => {
      const account = await h.newAccount();
      const { grant } = await grantDirectly(h.sql, account.id, { key: 'funds', amount: 100 });
      const held = await h.api('POST', `/v1/accounts/${account.id}/reservations`, {
        amount: 10,
        ttlSeconds: 600,
        idempotencyKey: `hold-${randomUUID()}`,
      });
      expect(held.status).toBe(201);
      const audited = await auditCount();

      const debit = await h.api('POST', `/v1/accounts/${account.id}/debits`, {
        amount: 5,
        idempotencyKey: `job-${randomUUID()}`,
        reason: text,
      });
      expectRefused(debit, 'reason', rule);
      const granted = await h.api('POST', `/v1/accounts/${account.id}/grants`, {
        amount: 5,
        idempotencyKey: `promo-${randomUUID()}`,
        reason: text,
      });
      expectRefused(granted, 'reason', rule);
      const voided = await h.api('POST', `/v1/accounts/${account.id}/grants/${grant.id}/void`, {
        reason: text,
      });
      expectRefused(voided, 'reason', rule);
      const captured = await h.api(
        'POST',
        `/v1/accounts/${account.id}/reservations/${held.body.id as string}/capture`,
        { reason: text },
      );
      expectRefused(captured, 'reason', rule);

      expect(await checkedBalance(h, account.id)).toBe(100);
      const standing = await h.api('GET', `/v1/accounts/${account.id}`);
      expect(standing.body).toMatchObject({ balance: 100, held: 10, available: 90 });
      const grants = await h.api('GET', `/v1/accounts/${account.id}/grants`);
      expect(grants.body.grants).toEqual([
        expect.objectContaining({ id: grant.id, status: 'live', remaining: 100 }),
      ]);
      expect(await auditCount()).toBe(audited);
    },
  );

  it.each(HOSTILE)(
    'when a review decision carries a note with %s, then 400 invalid_request names the rule and nothing is recorded',
    async (_what, text, rule) => {
      const audited = await auditCount();
      const answer = await h.api('POST', `/v1/reviews/evt_${randomUUID().replaceAll('-', '')}`, {
        decision: 'reject',
        note: text,
      });
      expectRefused(answer, 'note', rule);
      expect(await auditCount()).toBe(audited);
    },
  );

  it.each(HOSTILE)(
    'when a webhook endpoint is registered or changed with a description with %s, then 400 invalid_request names the rule and nothing is stored',
    async (_what, text, rule) => {
      const before = (await h.api('GET', '/v1/webhook-endpoints')).body.endpoints.length as number;
      const url = `http://127.0.0.1:9/${randomUUID()}`;
      const created = await h.api('POST', '/v1/webhook-endpoints', { url, description: text });
      expectRefused(created, 'description', rule);
      expect((await h.api('GET', '/v1/webhook-endpoints')).body.endpoints).toHaveLength(before);

      const endpoint = await h.api('POST', '/v1/webhook-endpoints', { url, description: 'billing backend' });
      expect(endpoint.status).toBe(201);
      const changed = await h.api('PATCH', `/v1/webhook-endpoints/${endpoint.body.id as string}`, {
        description: text,
      });
      expectRefused(changed, 'description', rule);
      const read = await h.api('GET', `/v1/webhook-endpoints/${endpoint.body.id as string}`);
      expect(read.body.description).toBe('billing backend');
      await h.api('DELETE', `/v1/webhook-endpoints/${endpoint.body.id as string}`);
    },
  );

  it('when a reason holds an emoji ZWJ sequence or Persian with a ZWNJ, then it is accepted and stored as written', async () => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'funds', amount: 100 });
    for (const reason of ['render 👩🏽‍💻 frame', 'می‌خواهم']) {
      const answer = await h.api('POST', `/v1/accounts/${account.id}/debits`, {
        amount: 1,
        idempotencyKey: `job-${randomUUID()}`,
        reason,
      });
      expect(answer.status).toBe(201);
    }
    const ledger = await h.api('GET', `/v1/accounts/${account.id}/ledger`);
    const reasons = (ledger.body.entries as Array<{ kind: string; reason: string }>)
      .filter((entry) => entry.kind === 'debit')
      .map((entry) => entry.reason);
    expect(reasons.sort()).toEqual(['render 👩🏽‍💻 frame', 'می‌خواهم'].sort());
  });
});
