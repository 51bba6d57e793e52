import { randomUUID } from 'node:crypto';
import { parseApiKeys } from '../config/env';
import { createGrant } from '../credits/grants';
import { holdCredits } from '../credits/reservations';
import { statusQuery } from '../workflows/purchases/contract';
import { checkoutSession, signPayload, stripeEvent } from '../stripe/fixtures/index';
import { checkedBalance, grantDirectly, ledgerOf } from './support/billing';
import { ADMIN_API_KEY, API_KEY, startHarness, WEBHOOK_SECRET, type Harness } from './support/harness';
import { waitUntil } from './support/wait';

/**
 * Hostile callers and unlucky timings that the service already answers as it should: odd bytes,
 * odd numbers, forged cursors, keys a little off, and the same request fifty times at once.
 */
describe('hostile inputs that hold up', () => {
  let h: Harness;
  const touched: string[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const funded = async (credits: number) => {
    const account = await h.newAccount();
    touched.push(account.id);
    await grantDirectly(h.sql, account.id, { key: 'funds', amount: credits });
    return account;
  };

  const postRaw = async (path: string, raw: string, apiKey = API_KEY) => {
    const response = await fetch(`${h.baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: raw,
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  describe('signed webhooks that can never be processed', () => {
    const deliverRaw = async (payload: string) => {
      const response = await fetch(`${h.baseUrl}/webhooks/stripe`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': signPayload(payload, WEBHOOK_SECRET),
        },
        body: payload,
      });
      return { status: response.status, body: await response.json() };
    };
    const rejectedByExcerpt = (excerpt: string) =>
      h.sql<{ event_id: string; event_type: string | null; deliveries: number; payload_excerpt: string }[]>`
        SELECT event_id, event_type, deliveries, payload_excerpt FROM rejected_events
        WHERE payload_excerpt = ${excerpt}`;

    it.each([
      ['a JSON array', `[${JSON.stringify(randomUUID())}]`],
      ['a JSON string', JSON.stringify(`evt_${randomUUID()}`)],
      ['a JSON number', String(Date.now())],
    ])(
      'when the signed body is %s, then 200 rejected, stored under a digest of the bytes, and a redelivery counts itself',
      async (_what, payload) => {
        const rejected = { status: 200, body: { received: true, workflowId: null, status: 'rejected' } };
        expect(await deliverRaw(payload)).toEqual(rejected);
        expect(await deliverRaw(payload)).toEqual(rejected);
        const rows = await rejectedByExcerpt(payload);
        expect(rows).toEqual([
          {
            event_id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
            event_type: null,
            deliveries: 2,
            payload_excerpt: payload,
          },
        ]);
      },
    );

    it('when a signed event has a 300-character ID, a NUL in its type and a 100 kB body, then it is rejected under a digest with a bounded, NUL-free excerpt', async () => {
      const id = `evt_${'x'.repeat(296)}`;
      const event = {
        ...stripeEvent('checkout.session.completed', checkoutSession({ packId: 'starter' })),
        id,
        type: 'checkout.session.completed\u0000',
        padding: 'p'.repeat(100_000),
      };
      const payload = JSON.stringify(event);
      expect((await deliverRaw(payload)).body).toMatchObject({ status: 'rejected' });
      const [row] = await h.sql<{ event_id: string; event_type: string | null; payload_excerpt: string }[]>`
        SELECT event_id, event_type, payload_excerpt FROM rejected_events WHERE payload_excerpt LIKE ${`%${id}%`}`;
      expect(row?.event_id).toMatch(/^sha256:/);
      expect(row?.event_type).toBeNull();
      expect(row?.payload_excerpt.length).toBeLessThanOrEqual(4096);
      expect(row?.payload_excerpt).not.toContain('\u0000');
    });

    it('when a paid session names its account with a trailing lone surrogate, then nothing is granted to the real account and it is held', async () => {
      const account = await h.newAccount();
      touched.push(account.id);
      const session = checkoutSession({ accountId: account.id, packId: 'starter' });
      const event = stripeEvent('checkout.session.completed', {
        ...session,
        client_reference_id: null,
        metadata: { ...(session.metadata as Record<string, string>), accountId: `${account.id}\ud800` },
      });
      expect((await h.deliver(event)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(event.id);
      await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
        what: 'held_for_review',
      });
      expect(await checkedBalance(h, account.id)).toBe(0);
      expect(await ledgerOf(h, account.id)).toEqual([]);
      await handle.terminate('test cleanup');
    });
  });

  describe('debit amounts and keys', () => {
    it.each([
      ['2^53', '9007199254740992'],
      ['a negative amount', '-1'],
      ['zero', '0'],
      ['a fraction', '1.5'],
      ['a number in a string', '"5"'],
      ['an exponent past float range', '1e400'],
      ['null', 'null'],
    ])('when the amount is %s, then 400 invalid_request and nothing moves', async (_what, amount) => {
      const account = await funded(100);
      const answer = await postRaw(
        `/v1/accounts/${account.id}/debits`,
        `{"amount": ${amount}, "idempotencyKey": "k-${randomUUID()}", "reason": "usage"}`,
      );
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_request');
      expect(await checkedBalance(h, account.id)).toBe(100);
    });

    it('when one debit is sent 50 times at once, then all 50 answer the same entry and one ledger row moves the balance once', async () => {
      const account = await funded(100);
      const body = { amount: 7, idempotencyKey: `burst-${randomUUID()}`, reason: 'usage' };
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => h.api('POST', `/v1/accounts/${account.id}/debits`, body, API_KEY)),
      );
      expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([201]));
      expect(new Set(answers.map((answer) => answer.body.entryId as number)).size).toBe(1);
      expect((await ledgerOf(h, account.id)).filter((row) => row.kind === 'debit')).toHaveLength(1);
      expect(await checkedBalance(h, account.id)).toBe(93);
    });

    it('when two accounts use one idempotency key, then each debit is its own and neither is a replay of the other', async () => {
      const [a, b] = [await funded(100), await funded(100)];
      const key = `shared-${randomUUID()}`;
      const first = await h.api(
        'POST',
        `/v1/accounts/${a.id}/debits`,
        { amount: 10, idempotencyKey: key, reason: 'x' },
        API_KEY,
      );
      const second = await h.api(
        'POST',
        `/v1/accounts/${b.id}/debits`,
        { amount: 30, idempotencyKey: key, reason: 'y' },
        API_KEY,
      );
      expect([first.status, second.status]).toEqual([201, 201]);
      expect(first.body.entryId).not.toBe(second.body.entryId);
      expect([await checkedBalance(h, a.id), await checkedBalance(h, b.id)]).toEqual([90, 70]);
    });
  });

  describe('reservations', () => {
    it('when one hold is sent 50 times at once, then one reservation holds the credits once; the key with another amount is 409', async () => {
      const account = await funded(100);
      const body = { amount: 30, ttlSeconds: 600, idempotencyKey: `hold-${randomUUID()}` };
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          h.api('POST', `/v1/accounts/${account.id}/reservations`, body, API_KEY),
        ),
      );
      expect(answers.filter((answer) => answer.status === 201)).toHaveLength(1);
      expect(answers.filter((answer) => answer.status === 200)).toHaveLength(49);
      expect(new Set(answers.map((answer) => answer.body.id as string)).size).toBe(1);
      const other = await h.api(
        'POST',
        `/v1/accounts/${account.id}/reservations`,
        { ...body, amount: 31 },
        API_KEY,
      );
      expect(other.status).toBe(409);
      const summary = await h.api('GET', `/v1/accounts/${account.id}`, undefined, API_KEY);
      expect(summary.body).toMatchObject({ balance: 100, held: 30, available: 70 });
    });

    it('when captures and releases of the same holds race, then each hold ends one way and the books agree', async () => {
      const account = await funded(100);
      const holds = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          holdCredits(h.sql, {
            accountId: account.id,
            amount: 10,
            ttlSeconds: 600,
            idempotencyKey: `race-${i}`,
          }),
        ),
      );
      const path = (id: string, what: string) => `/v1/accounts/${account.id}/reservations/${id}/${what}`;
      const answers = await Promise.all(
        holds.flatMap(({ reservation }) => [
          h.api('POST', path(reservation.id, 'capture'), { reason: 'job' }, API_KEY),
          h.api('POST', path(reservation.id, 'release'), undefined, API_KEY),
        ]),
      );
      for (const answer of answers) expect([200, 201, 409]).toContain(answer.status);
      const rows = await h.sql<{ status: string }[]>`
        SELECT status FROM credit_reservations WHERE account_id = ${account.id}`;
      const captured = rows.filter((row) => row.status === 'captured').length;
      expect(rows.every((row) => row.status === 'captured' || row.status === 'released')).toBe(true);
      expect(await checkedBalance(h, account.id)).toBe(100 - 10 * captured);
      const summary = await h.api('GET', `/v1/accounts/${account.id}`, undefined, API_KEY);
      expect(summary.body).toMatchObject({ held: 0, available: 100 - 10 * captured });
    });

    it.each([
      ['a TTL of zero', { ttlSeconds: 0 }],
      ['a fractional TTL', { ttlSeconds: 1.5 }],
      ['a TTL past a week', { ttlSeconds: 7 * 24 * 3600 + 1 }],
      ['an amount of 2^53', { amount: 2 ** 53 }],
      ['an idempotency key with a space', { idempotencyKey: 'a b' }],
    ])('when a hold has %s, then 400 and nothing is held', async (_what, change) => {
      const account = await funded(100);
      const answer = await h.api(
        'POST',
        `/v1/accounts/${account.id}/reservations`,
        { amount: 10, ttlSeconds: 60, idempotencyKey: `h-${randomUUID()}`, ...change },
        API_KEY,
      );
      expect(answer.status).toBe(400);
      const summary = await h.api('GET', `/v1/accounts/${account.id}`, undefined, API_KEY);
      expect(summary.body).toMatchObject({ held: 0, available: 100 });
    });
  });

  describe('voids racing debits', () => {
    it('when a grant is voided while 20 debits draw on it, then the void takes exactly what was left and nothing is overdrawn', async () => {
      const account = await h.newAccount();
      touched.push(account.id);
      const { grant } = await h.sql.begin((tx) =>
        createGrant(tx, {
          accountId: account.id,
          source: 'manual',
          category: 'paid',
          priority: 100,
          expiresAt: null,
          amount: 100,
          businessKey: `test:${account.id}:void-race`,
          kind: 'grant',
          reason: 'void race',
        }),
      );
      const debits = Array.from({ length: 20 }, (_, i) =>
        h.api(
          'POST',
          `/v1/accounts/${account.id}/debits`,
          { amount: 10, idempotencyKey: `d-${i}`, reason: 'r' },
          API_KEY,
        ),
      );
      const voiding = h.api('POST', `/v1/accounts/${account.id}/grants/${grant.id}/void`, {
        reason: 'mistake',
      });
      const [voided, ...answers] = await Promise.all([voiding, ...debits]);
      expect(voided.status).toBe(200);
      const spent = answers.filter((answer) => answer.status === 201).length;
      expect(answers.every((answer) => answer.status === 201 || answer.status === 402)).toBe(true);
      const ledger = await ledgerOf(h, account.id);
      const voidRow = ledger.filter((row) => row.kind === 'void');
      expect(voidRow.reduce((sum, row) => sum + row.delta, 0)).toBe(10 * spent - 100);
      expect(await checkedBalance(h, account.id)).toBe(0);
    });
  });

  describe('cursors and keys', () => {
    const cursor = (text: string) => Buffer.from(text).toString('base64url');

    it.each([
      ['text', cursor('abc')],
      ['a negative ID', cursor('-5')],
      ['zero', cursor('0')],
      ['a fraction', cursor('1.5')],
      ['an ID past 2^53', cursor('99999999999999999999')],
    ])(
      'when a ledger or rejected-events cursor encodes %s, then 400, never a page',
      async (_what, forged) => {
        const account = await funded(10);
        const ledger = await h.api(
          'GET',
          `/v1/accounts/${account.id}/ledger?cursor=${forged}`,
          undefined,
          API_KEY,
        );
        expect(ledger.status).toBe(400);
        expect(ledger.body.error.code).toBe('invalid_request');
        const rejected = await h.api('GET', `/v1/rejected-events?cursor=${forged}`);
        expect(rejected.status).toBe(400);
      },
    );

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

    it('when BILLING_API_KEYS has a role in another case, or a bare secret with a colon, then it is refused; a secret may hold colons', () => {
      expect(() => parseApiKeys('ops:Admin:0123456789abcdefXYZ')).toThrow(/role/);
      expect(() => parseApiKeys('ops:admin :0123456789abcdefXYZ')).toThrow(/role/);
      expect(() => parseApiKeys('0123456789abcdef:XYZ')).toThrow(/name:role:secret/);
      expect(parseApiKeys('ops:admin:0123:4567:89abcdefXYZ')).toEqual([
        { name: 'ops', role: 'admin', secret: '0123:4567:89abcdefXYZ' },
      ]);
    });
  });

  it('when the tests of this file are done, then every account they touched balances', async () => {
    for (const accountId of touched) await checkedBalance(h, accountId);
  });
});
