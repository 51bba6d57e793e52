import { randomUUID } from 'node:crypto';
import { closeGrant, findBalanceDrift, findOrphanRows } from '../../credits/index';
import { saveLowBalanceSettings } from '../../db/topups/low-balance';
import { checkedBalance, grantDirectly, fundedAccount as fundedAccountOf } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

/**
 * Usage through the API: each event of a request answered on its own (accepted with the credits
 * it burned, a duplicate with what its first answer said, a conflict, or refused with a stable
 * code), each counted once per (account, event ID) whatever the concurrency, hostile input
 * refused with nothing applied, one low-balance notice per crossing however many events crossed
 * it, and the books (balance = Σ ledger = Σ grants, each usage ledger row = its events) kept.
 *
 * The catalogue is config/catalog/features.json: llm-tokens 1 credit per 1,000 (refuse),
 * image-generation 5 per image (refuse), api-calls 1 per 100 (debt allowed).
 */
describe('usage ingestion', () => {
  let h: Harness;
  const accounts: string[] = [];
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const fundedAccount = (credits: number) => fundedAccountOf(h, credits, accounts);

  const usage = (events: unknown[]) => h.api('POST', '/v1/usage', { events });
  const event = (
    accountId: string,
    feature: string,
    quantity: number,
    extra: Record<string, unknown> = {},
  ) => ({
    id: `evt-${randomUUID()}`,
    accountId,
    feature,
    quantity,
    ...extra,
  });
  const eventRows = async (accountId: string) =>
    Number(
      (
        await h.sql<
          { n: string }[]
        >`SELECT count(*)::text AS n FROM usage_events WHERE account_id = ${accountId}`
      )[0]?.n,
    );
  const ledgerRows = async (accountId: string) =>
    h.sql<{ id: string; delta: string; kind: string; reason: string }[]>`
      SELECT id::text, delta::text, kind, reason FROM credit_ledger WHERE account_id = ${accountId} ORDER BY id`;

  it('when a batch mixes good and bad events, then each is answered on its own and only the good ones burn, fractions accruing', async () => {
    const account = await fundedAccount(100);
    const events = [
      event(account, 'llm-tokens', 2500), // 2.5 credits: 2 now, the half accrues
      event(account, 'llm-tokens', 600), // 3.1 in all: 1 more
      event(account, 'image-generation', 1), // 5
      event(account, 'no-such-feature', 1),
      event(`acct_${randomUUID()}`, 'llm-tokens', 1),
      event(account, 'image-generation', 100), // 500 > 92 available
      event(account, 'llm-tokens', 0),
    ];
    const answer = await usage(events);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ accepted: 3, duplicates: 0, conflicts: 0, refused: 4, credits: 8 });
    const results = answer.body.results as Array<{
      id: string;
      status: string;
      credits?: number;
      ledgerEntryId?: number;
      error?: { code: string };
    }>;
    expect(results.map((r) => r.id)).toEqual(events.map((e) => e.id));
    expect(results.map((r) => (r.status === 'accepted' ? r.credits : r.error?.code))).toEqual([
      2,
      1,
      5,
      'feature_not_found',
      'account_not_found',
      'insufficient_credits',
      'invalid_event',
    ]);
    expect(await checkedBalance(h, account)).toBe(92);
    // One ledger row per account and feature of the request, naming the feature and its events.
    const rows = await ledgerRows(account);
    expect(rows.slice(1).map((r) => ({ delta: r.delta, kind: r.kind, reason: r.reason }))).toEqual([
      { delta: '-3', kind: 'usage', reason: '2 events of llm-tokens' },
      { delta: '-5', kind: 'usage', reason: '1 event of image-generation' },
    ]);
    expect(results[0]?.ledgerEntryId).toBe(Number(rows[1]?.id));
    expect(results[1]?.ledgerEntryId).toBe(Number(rows[1]?.id));
    expect(results[2]?.ledgerEntryId).toBe(Number(rows[2]?.id));

    // The same request again: the accepted ones are duplicates with their first answer, nothing burns.
    const again = await usage(events);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 3, refused: 4, credits: 0 });
    expect((again.body.results as Array<Record<string, unknown>>).slice(0, 3)).toEqual(
      results.slice(0, 3).map((r) => ({ ...r, status: 'duplicate' })),
    );
    expect(await checkedBalance(h, account)).toBe(92);
    expect(await eventRows(account)).toBe(3);

    // The half credit left on the meter carries over to the next request: 3,100 + 900 = 4 credits.
    const next = await usage([event(account, 'llm-tokens', 900)]);
    expect(next.body.results[0]).toMatchObject({ status: 'accepted', credits: 1 });
    expect(await checkedBalance(h, account)).toBe(91);
  });

  it('when an event ID comes back with another body, then it is a conflict and nothing burns', async () => {
    const account = await fundedAccount(50);
    const first = event(account, 'image-generation', 1, { properties: { model: 'small', n: 1 } });
    expect((await usage([first])).body.results[0]).toMatchObject({ status: 'accepted', credits: 5 });
    // Property order is not part of the body; the quantity is.
    const reordered = { ...first, properties: { n: 1, model: 'small' } };
    expect((await usage([reordered])).body.results[0]).toMatchObject({ status: 'duplicate', credits: 5 });
    const other = { ...first, quantity: 2 };
    const answer = await usage([other]);
    expect(answer.body.results[0]).toMatchObject({
      status: 'conflict',
      error: { code: 'event_id_reused' },
    });
    expect(await checkedBalance(h, account)).toBe(45);
    expect(await eventRows(account)).toBe(1);
  });

  it('when the same event arrives in 50 concurrent requests, then it is counted once and every other answer is a duplicate of it', async () => {
    const account = await fundedAccount(100);
    const same = event(account, 'image-generation', 3);
    const answers = await Promise.all(Array.from({ length: 50 }, () => usage([same])));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    const results = answers.map((a) => a.body.results[0] as Record<string, unknown>);
    expect(results.filter((r) => r.status === 'accepted')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'duplicate')).toHaveLength(49);
    const ledgerEntryId = results.find((r) => r.status === 'accepted')?.ledgerEntryId;
    for (const r of results) expect(r).toMatchObject({ credits: 15, ledgerEntryId });
    expect(await checkedBalance(h, account)).toBe(85);
    expect(await eventRows(account)).toBe(1);
  });

  describe('hostile input: clear errors, nothing applied', () => {
    it('when a request carries 10,001 events, then it is refused whole with 400', async () => {
      const account = await fundedAccount(100);
      // Short IDs, so that the count (not the body limit) is what refuses it; one event is the account's.
      const events = [
        event(account, 'llm-tokens', 1),
        ...Array.from({ length: 10_000 }, (_, i) => ({
          id: `e${i}`,
          accountId: 'acct_x',
          feature: 'x',
          quantity: 1,
        })),
      ];
      const answer = await usage(events);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'invalid_request' });
      expect(await eventRows(account)).toBe(0);
      expect(await checkedBalance(h, account)).toBe(100);
    });

    it('when a request repeats an event ID for one account, then it is refused whole with 400', async () => {
      const account = await fundedAccount(100);
      const repeated = event(account, 'image-generation', 1);
      const answer = await usage([event(account, 'image-generation', 1), repeated, { ...repeated }]);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({
        code: 'invalid_request',
        message: expect.stringContaining('2'),
      });
      expect(await eventRows(account)).toBe(0);
      expect(await checkedBalance(h, account)).toBe(100);
    });

    it('when events carry bad quantities, IDs or properties, then each is refused as invalid_event and the rest apply', async () => {
      const account = await fundedAccount(100);
      const bad = [
        event(account, 'image-generation', 0),
        event(account, 'image-generation', -3),
        event(account, 'image-generation', 1.5),
        event(account, 'image-generation', 2 ** 53),
        event(account, 'image-generation', Number.MAX_SAFE_INTEGER), // valid, but costs too much
        { ...event(account, 'image-generation', 1), id: 'nul\u0000id' },
        { ...event(account, 'image-generation', 1), id: 'bell\u0007id' },
        event(account, 'image-generation', 1, { properties: { note: 'a\u0000b' } }),
        event(account, 'image-generation', 1, { properties: { ['k\u001b']: 1 } }),
        event(account, 'image-generation', 1, { properties: { blob: 'x'.repeat(5000) } }),
        event(account, 'image-generation', 1, { timestamp: 'yesterday' }),
        event(account, 'image-generation', 1, { timestamp: '2999-01-01T00:00:00Z' }),
        { ...event(account, 'image-generation', 1), quantity: '1' },
        event(account, 'image-generation', 1, { extra: true }),
        { ...event(account, 'image-generation', 1), id: '' },
        { ...event(account, 'image-generation', 1), id: 'x'.repeat(256) },
        'not an event',
        null,
      ];
      const good = event(account, 'image-generation', 2);
      const answer = await usage([...bad, good]);
      expect(answer.status).toBe(200);
      const results = answer.body.results as Array<Record<string, any>>;
      const codes = results.slice(0, bad.length).map((r) => `${r.status}:${r.error?.code}`);
      expect(codes).toEqual([
        ...Array(4).fill('refused:invalid_event'),
        expect.stringMatching(/^refused:(insufficient_credits|balance_out_of_range)$/),
        ...Array(bad.length - 5).fill('refused:invalid_event'),
      ]);
      for (const r of results.slice(0, bad.length)) expect(r.error.message).toEqual(expect.any(String));
      expect(results[bad.length]).toMatchObject({ status: 'accepted', credits: 10 });
      expect(await eventRows(account)).toBe(1);
      expect(await checkedBalance(h, account)).toBe(90);
    });

    it('when the body is 1 MB of properties or not a batch at all, then the request is refused whole', async () => {
      const account = await fundedAccount(100);
      const huge = await usage([
        event(account, 'image-generation', 1, { properties: { blob: 'x'.repeat(1024 * 1024) } }),
      ]);
      expect(huge.status).toBe(413);
      expect(huge.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });
      for (const body of [
        [],
        {},
        { events: 'x' },
        { events: [] },
        { events: [event(account, 'llm-tokens', 1)], x: 1 },
      ]) {
        const answer = await h.api('POST', '/v1/usage', body);
        expect(answer.status).toBe(400);
        expect(answer.body.error).toMatchObject({ code: 'invalid_request' });
      }
      const broken = await h.api('POST', '/v1/usage', '{"events": [');
      expect(broken.status).toBe(400);
      expect(await eventRows(account)).toBe(0);
      expect(await checkedBalance(h, account)).toBe(100);
    });
  });

  it('when 1,000 events of one request take the balance across the low-balance threshold, then exactly one notice is recorded', async () => {
    const account = await fundedAccount(1200);
    await saveLowBalanceSettings(h.sql, account, 500);
    const events = Array.from({ length: 1000 }, () => event(account, 'llm-tokens', 1000));
    const answer = await usage(events);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ accepted: 1000, credits: 1000 });
    expect(await checkedBalance(h, account)).toBe(200);
    const notices = await h.sql<{ kind: string }[]>`
      SELECT kind FROM balance_follow_ups WHERE account_id = ${account} AND kind = 'low_balance_notice'`;
    expect(notices).toHaveLength(1);
    const lows =
      await h.sql`SELECT id FROM outbound_events WHERE account_id = ${account} AND type = 'balance.low'`;
    expect(lows).toHaveLength(1);
    // One ledger row for the thousand events, and it leads to all of them.
    const rows = await ledgerRows(account);
    expect(rows.slice(1).map((r) => r.delta)).toEqual(['-1000']);
    const byRow = await h.api('GET', `/v1/accounts/${account}/usage?ledgerEntryId=${rows[1]?.id}&limit=100`);
    expect(byRow.status).toBe(200);
    expect(byRow.body.events).toHaveLength(100);
    expect(byRow.body.nextCursor).toEqual(expect.any(String));
  });

  it('when usage races debits, holds and an expiry on a refusing feature, then the balance never goes below zero and the books agree', async () => {
    const account = await fundedAccount(200);
    const promo = await grantDirectly(h.sql, account, {
      key: 'promo',
      amount: 100,
      category: 'promotional',
      expiresAt: new Date(Date.now() + 3600_000),
    });
    const work: Array<Promise<{ status: number; body: any }>> = [];
    for (let i = 0; i < 30; i++) {
      work.push(usage([event(account, 'image-generation', 1), event(account, 'image-generation', 2)]));
      work.push(
        h.api('POST', `/v1/accounts/${account}/debits`, {
          amount: 7,
          idempotencyKey: `debit-${randomUUID()}`,
          reason: 'work',
        }),
      );
      if (i % 5 === 0) {
        work.push(
          h.api('POST', `/v1/accounts/${account}/reservations`, {
            amount: 9,
            ttlSeconds: 600,
            idempotencyKey: `hold-${randomUUID()}`,
          }),
        );
      }
      if (i === 10) {
        work.push(
          h.sql`UPDATE credit_grants SET expires_at = now() WHERE id = ${promo.grant.id}`.then(async () => {
            await closeGrant(h.sql, promo.grant.id, { as: 'expired' });
            return { status: 200, body: null };
          }),
        );
      }
    }
    const answers = await Promise.all(work);
    for (const answer of answers) expect([200, 201, 402]).toContain(answer.status);
    const balance = await checkedBalance(h, account);
    expect(balance).toBeGreaterThanOrEqual(0);
    const summary = (await h.api('GET', `/v1/accounts/${account}`)).body as {
      available: number;
      held: number;
    };
    expect(summary.available).toBeGreaterThanOrEqual(0);
    expect(summary.held).toBeLessThanOrEqual(balance);
    const spent = await h.sql<{ total: string }[]>`
      SELECT COALESCE(-SUM(delta), 0)::text AS total FROM credit_ledger
      WHERE account_id = ${account} AND delta < 0 AND kind <> 'expiry'`;
    const expired = await h.sql<
      { expired: string }[]
    >`SELECT expired::text FROM credit_grants WHERE id = ${promo.grant.id}`;
    expect(Number(spent[0]?.total) + Number(expired[0]?.expired)).toBeLessThanOrEqual(300);
  });

  describe('check', () => {
    it('when an account checks without reserving, then the answer is a read and nothing is written', async () => {
      const account = await fundedAccount(10);
      const before = await h.sql`SELECT * FROM credit_balances WHERE account_id = ${account}`;
      const writes = async () =>
        h.sql<{ n: string }[]>`
          SELECT (SELECT count(*) FROM credit_ledger WHERE account_id = ${account})
               + (SELECT count(*) FROM credit_reservations WHERE account_id = ${account})
               + (SELECT count(*) FROM usage_events WHERE account_id = ${account}) AS n`;
      const rowsBefore = await writes();
      const allowed = await h.api('POST', '/v1/check', {
        accountId: account,
        feature: 'image-generation',
        quantity: 2,
      });
      expect(allowed.status).toBe(200);
      expect(allowed.body).toEqual({
        allowed: true,
        credits: 10,
        available: 10,
        balance: 10,
        reservation: null,
      });
      const refused = await h.api('POST', '/v1/check', {
        accountId: account,
        feature: 'image-generation',
        quantity: 3,
      });
      expect(refused.body).toMatchObject({ allowed: false, credits: 15, available: 10 });
      const owing = await h.api('POST', '/v1/check', {
        accountId: account,
        feature: 'api-calls',
        quantity: 5000,
      });
      expect(owing.body).toMatchObject({ allowed: true, credits: 50 });
      expect(await writes()).toEqual(rowsBefore);
      expect(await h.sql`SELECT * FROM credit_balances WHERE account_id = ${account}`).toEqual(before);
      const unknown = await h.api('POST', '/v1/check', { accountId: account, feature: 'nope', quantity: 1 });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('feature_not_found');
      const nobody = await h.api('POST', '/v1/check', {
        accountId: `acct_${randomUUID()}`,
        feature: 'nope',
        quantity: 1,
      });
      expect(nobody.body.error.code).toBe('account_not_found');
    });

    it('when a check reserves, then a hold is made and a usage event naming it captures it', async () => {
      const account = await fundedAccount(20);
      const check = await h.api('POST', '/v1/check', {
        accountId: account,
        feature: 'image-generation',
        quantity: 2,
        reserve: { ttlSeconds: 600, idempotencyKey: `check-${randomUUID()}` },
      });
      expect(check.status).toBe(200);
      expect(check.body).toMatchObject({
        allowed: true,
        credits: 10,
        reservation: { status: 'held', amount: 10 },
      });
      const reservationId = check.body.reservation.id as string;
      expect((await h.api('GET', `/v1/accounts/${account}`)).body).toMatchObject({ held: 10, available: 10 });

      // Another spender cannot take the held credits …
      const other = await usage([event(account, 'image-generation', 3)]);
      expect(other.body.results[0]).toMatchObject({
        status: 'refused',
        error: { code: 'insufficient_credits' },
      });
      // … but the event that names the hold spends them.
      const named = await usage([event(account, 'image-generation', 2, { reservationId })]);
      expect(named.body.results[0]).toMatchObject({ status: 'accepted', credits: 10 });
      expect(
        (await h.api('GET', `/v1/accounts/${account}/reservations/${reservationId}`)).body,
      ).toMatchObject({
        status: 'captured',
      });
      expect((await h.api('GET', `/v1/accounts/${account}`)).body).toMatchObject({
        balance: 10,
        held: 0,
        available: 10,
      });
      const reused = await usage([event(account, 'image-generation', 1, { reservationId })]);
      expect(reused.body.results[0]).toMatchObject({
        status: 'refused',
        error: { code: 'reservation_settled' },
      });
      expect(await checkedBalance(h, account)).toBe(10);
    });
  });

  it('GET /v1/features lists the active catalogue with prices', async () => {
    const answer = await h.api('GET', '/v1/features');
    expect(answer.status).toBe(200);
    expect(answer.body.features).toEqual(
      expect.arrayContaining([
        { key: 'llm-tokens', name: expect.any(String), credits: 1, units: 1000, overdraft: 'refuse' },
        { key: 'image-generation', name: expect.any(String), credits: 5, units: 1, overdraft: 'refuse' },
        { key: 'api-calls', name: expect.any(String), credits: 1, units: 100, overdraft: 'allow' },
      ]),
    );
  });

  it("when an account's usage is listed, then its events come newest first in pages, and the account must exist", async () => {
    const account = await fundedAccount(100);
    const sent = [
      event(account, 'image-generation', 1, { properties: { job: 'a' }, timestamp: '2026-01-02T03:04:05Z' }),
      event(account, 'llm-tokens', 1500),
    ];
    await usage([sent[0]]);
    await usage([sent[1]]);
    const first = await h.api('GET', `/v1/accounts/${account}/usage?limit=1`);
    expect(first.status).toBe(200);
    expect(first.body.events).toEqual([
      expect.objectContaining({ id: sent[1]?.id, feature: 'llm-tokens', quantity: 1500, credits: 1 }),
    ]);
    const second = await h.api(
      'GET',
      `/v1/accounts/${account}/usage?limit=1&cursor=${first.body.nextCursor}`,
    );
    expect(second.body.events).toEqual([
      expect.objectContaining({
        id: sent[0]?.id,
        credits: 5,
        properties: { job: 'a' },
        timestamp: '2026-01-02T03:04:05.000Z',
      }),
    ]);
    expect(second.body.nextCursor).toBeNull();
    expect((await h.api('GET', `/v1/accounts/acct_${randomUUID()}/usage`)).status).toBe(404);
    expect((await h.api('GET', `/v1/accounts/${account}/usage?cursor=@@`)).status).toBe(400);
  });

  it('when the balance is asked at a past moment, then it is the balance the ledger had then', async () => {
    const account = await fundedAccount(100);
    const [{ now: afterGrant } = { now: new Date() }] = await h.sql<
      { now: Date }[]
    >`SELECT clock_timestamp() AS now`;
    await usage([event(account, 'image-generation', 4)]);
    const then = await h.api('GET', `/v1/accounts/${account}/balance?at=${afterGrant.toISOString()}`);
    expect(then.status).toBe(200);
    expect(then.body).toMatchObject({ balance: 100, held: 0, available: 100 });
    const now = await h.api('GET', `/v1/accounts/${account}/balance?at=${new Date().toISOString()}`);
    expect(now.body).toMatchObject({ balance: 80, available: 80 });
    const before = await h.api('GET', `/v1/accounts/${account}/balance?at=2001-01-01T00:00:00Z`);
    expect(before.body).toMatchObject({ balance: 0, ledgerEntryId: null });
    expect((await h.api('GET', `/v1/accounts/${account}/balance?at=2999-01-01T00:00:00Z`)).status).toBe(400);
    expect((await h.api('GET', `/v1/accounts/${account}/balance?at=soon`)).status).toBe(400);
  });

  it('when usage allows debt, then what the credits cannot cover is owed and the next grant repays it', async () => {
    const account = await fundedAccount(3);
    const answer = await usage([event(account, 'api-calls', 1000)]);
    expect(answer.body.results[0]).toMatchObject({ status: 'accepted', credits: 10 });
    expect(await checkedBalance(h, account)).toBe(-7);
    await grantDirectly(h.sql, account, { key: 'more', amount: 20 });
    expect(await checkedBalance(h, account)).toBe(13);
  });

  it('after all of the above, verify:ledger finds no drift and every usage row burned exactly its events', async () => {
    const drift = await findBalanceDrift(h.sql);
    expect(drift.filter((d) => accounts.includes(d.accountId))).toEqual([]);
    expect((await findOrphanRows(h.sql)).usageRows).toBe(0);
  });
});
