import { randomUUID } from 'node:crypto';
import { createAccount } from '../../credits/accounts';
import { debitKey } from '../../credits/debits';
import { createGrant } from '../../credits/grants';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { checkedBalance, grantDirectly, ledgerOf } from '../support/billing';
import { balanceOf, driftedAccounts } from '../support/db';
import { API_KEY, startHarness, type Harness } from '../support/harness';

describe('debits and the ledger', () => {
  let h: Harness;
  const accounts: string[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An account holding 100 credits, bought through the real purchase path. */
  async function accountWith100Credits() {
    const account = await h.newAccount();
    accounts.push(account.id);
    const event = stripeEvent(
      'checkout.session.completed',
      checkoutSession({ accountId: account.id, packId: 'starter' }),
    );
    await h.deliver(event);
    await h.temporal.workflow.getHandle(event.id).result();
    expect(await balanceOf(h.sql, account.id)).toBe(100);
    return account;
  }

  const debit = (accountId: string, body: Record<string, unknown>) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, body);

  it('when 150 debits of 1 with distinct keys race on a balance of 100, then exactly 100 succeed and the balance ends at 0', async () => {
    const account = await accountWith100Credits();
    const responses = await Promise.all(
      Array.from({ length: 150 }, (_, index) =>
        debit(account.id, { amount: 1, idempotencyKey: `race-${index}`, reason: 'race' }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(100);
    expect(statuses.filter((status) => status === 402)).toHaveLength(50);
    expect(responses.find((response) => response.status === 402)?.body.error.code).toBe(
      'insufficient_credits',
    );
    expect(await balanceOf(h.sql, account.id)).toBe(0);
    // Every successful debit left a distinct balance: 99 … 0.
    const balances = responses.filter((r) => r.status === 201).map((r) => r.body.balance as number);
    expect(new Set(balances).size).toBe(100);
    expect(Math.min(...balances)).toBe(0);
  });

  it('when a debit is replayed with its key, then the original answer comes back and nothing changes', async () => {
    const account = await accountWith100Credits();
    const body = { amount: 30, idempotencyKey: 'job-1', reason: 'render' };
    const first = await debit(account.id, body);
    expect(first).toEqual({ status: 201, body: { entryId: expect.any(Number), balance: 70 } });
    await debit(account.id, { amount: 10, idempotencyKey: 'job-2', reason: 'render' });
    const replay = await debit(account.id, body);
    expect(replay).toEqual(first);
    expect(await balanceOf(h.sql, account.id)).toBe(60);
  });

  it('when two accounts use keys that once spelled the same ledger key, then each debit is its own', async () => {
    // `debit:<account>:<key>` used to make account `a` key `x:k` and account `a:x` key `k` one row.
    const first = await accountWith100Credits();
    const colon = `${first.id}:x`;
    await createAccount(h.sql, { id: colon, email: 'colon@customers.test' });
    accounts.push(colon);
    await h.api('POST', `/v1/accounts/${colon}/grants`, {
      amount: 100,
      category: 'paid',
      reason: 'funding',
      idempotencyKey: 'fund',
    });
    const mine = await debit(first.id, { amount: 7, idempotencyKey: 'x:k', reason: 'same' });
    const theirs = await debit(colon, { amount: 7, idempotencyKey: 'k', reason: 'same' });
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.entryId).not.toBe(mine.body.entryId);
    expect(await balanceOf(h.sql, first.id)).toBe(93);
    expect(await balanceOf(h.sql, colon)).toBe(93);
  });

  it('when a key is reused with another amount or reason, then 409 and nothing changes', async () => {
    const account = await accountWith100Credits();
    await debit(account.id, { amount: 5, idempotencyKey: 'job-x', reason: 'a' });
    const otherAmount = await debit(account.id, { amount: 6, idempotencyKey: 'job-x', reason: 'a' });
    const otherReason = await debit(account.id, { amount: 5, idempotencyKey: 'job-x', reason: 'b' });
    expect(otherAmount.status).toBe(409);
    expect(otherAmount.body.error.code).toBe('idempotency_key_reused');
    expect(otherReason.status).toBe(409);
    expect(await balanceOf(h.sql, account.id)).toBe(95);
  });

  it('when a replayed key meets a balance that is now too low, then it still answers its original result', async () => {
    const account = await accountWith100Credits();
    const first = await debit(account.id, { amount: 100, idempotencyKey: 'all', reason: 'spend all' });
    expect(first.body.balance).toBe(0);
    expect(await debit(account.id, { amount: 100, idempotencyKey: 'all', reason: 'spend all' })).toEqual(
      first,
    );
    const more = await debit(account.id, { amount: 1, idempotencyKey: 'one-more', reason: 'x' });
    expect(more.status).toBe(402);
  });

  it.each([
    ['a zero amount', { amount: 0, idempotencyKey: 'k', reason: 'r' }],
    ['a fractional amount', { amount: 1.5, idempotencyKey: 'k', reason: 'r' }],
    ['an amount as a string', { amount: '5', idempotencyKey: 'k', reason: 'r' }],
    ['no idempotency key', { amount: 1, reason: 'r' }],
    ['an empty reason', { amount: 1, idempotencyKey: 'k', reason: '' }],
    ['an unknown field', { amount: 1, idempotencyKey: 'k', reason: 'r', force: true }],
  ])('when a debit has %s, then 400 invalid_request and nothing changes', async (_name, body) => {
    const account = await h.newAccount();
    const response = await debit(account.id, body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_request');
  });

  it('when the account does not exist, then debits and ledger answer 404', async () => {
    expect((await debit('acct_missing', { amount: 1, idempotencyKey: 'k', reason: 'r' })).status).toBe(404);
    expect((await h.api('GET', '/v1/accounts/acct_missing/ledger')).status).toBe(404);
  });

  it('when the ledger is paged, then every entry appears once, newest first, across more than two pages', async () => {
    const account = await accountWith100Credits();
    for (let index = 0; index < 22; index += 1) {
      await debit(account.id, { amount: 1, idempotencyKey: `page-${index}`, reason: `debit ${index}` });
    }
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=10&cursor=${cursor}` : '?limit=10';
      const page = await h.api('GET', `/v1/accounts/${account.id}/ledger${query}`);
      expect(page.status).toBe(200);
      const body = page.body as { entries: Array<{ id: number }>; nextCursor: string | null };
      seen.push(...body.entries.map((entry) => entry.id));
      cursor = body.nextCursor;
      pages += 1;
      // Entries arriving meanwhile must not shift pages: add one after the first page.
      if (pages === 1) await debit(account.id, { amount: 1, idempotencyKey: 'late', reason: 'late' });
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(23);
    expect(new Set(seen).size).toBe(23);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);

    const newest = await h.api('GET', `/v1/accounts/${account.id}/ledger?limit=1`);
    expect(newest.body.entries[0]).toMatchObject({
      kind: 'debit',
      delta: -1,
      reference: debitKey(account.id, 'late'),
      balanceAfter: 77,
    });
  });

  it.each([['limit=0'], ['limit=101'], ['limit=ten'], ['cursor=%21%21'], ['cursor=LTE'], ['other=1']])(
    'when the ledger query has %s, then 400 invalid_request',
    async (query) => {
      const account = await h.newAccount();
      const response = await h.api('GET', `/v1/accounts/${account.id}/ledger?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('invalid_request');
    },
  );

  describe('amounts, reasons and keys a caller gets wrong, races, forged cursors', () => {
    const touched: string[] = [];
    /** An account holding `credits`, granted directly. */
    const funded = async (credits: number) => {
      const account = await h.newAccount();
      touched.push(account.id);
      accounts.push(account.id);
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

      it('when a debit reason holds a lone surrogate (it could not be stored as sent), then 400 invalid_request and nothing moves', async () => {
        const account = await funded(100);
        const body = { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason: 'render \ud800 frame' };
        const first = await h.api('POST', `/v1/accounts/${account.id}/debits`, body, API_KEY);
        expect(first).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
        expect(await checkedBalance(h, account.id)).toBe(100);
      });

      it('when a debit reason holds a NUL character, then 400 invalid_request and nothing moves, not a 500', async () => {
        const account = await funded(100);
        const answer = await h.api(
          'POST',
          `/v1/accounts/${account.id}/debits`,
          { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason: 'usage\u0000' },
          API_KEY,
        );
        expect(answer.status).toBe(400);
        expect(answer.body.error.code).toBe('invalid_request');
        expect(await checkedBalance(h, account.id)).toBe(100);
      });
    });

    describe('the text people write', () => {
      const debit = async (reason: string) => {
        const account = await funded(100);
        const answer = await h.api(
          'POST',
          `/v1/accounts/${account.id}/debits`,
          { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason },
          API_KEY,
        );
        return { account, answer };
      };

      it.each([
        ['a tab', 'render\tframe'],
        ['a newline', 'render\nframe'],
        ['a carriage return', 'render\rframe'],
        ['DEL', 'render\u007fframe'],
        ['a C1 line break (U+0085)', 'render\u0085frame'],
        ['a C1 escape introducer (U+009B)', 'render\u009b[31mframe'],
        ['U+202E (a bidi override, which reorders how the text reads)', 'render \u202eemarf'],
      ])('when a reason holds %s, then 400 invalid_request and nothing moves', async (_what, reason) => {
        const { account, answer } = await debit(reason);
        expect(answer.status).toBe(400);
        expect(answer.body.error.code).toBe('invalid_request');
        expect(await checkedBalance(h, account.id)).toBe(100);
      });

      it.each([
        ['U+2028 (a line separator, not a control character)', 'render\u2028frame'],
        ['emoji (surrogate pairs)', 'render 🎬🎞️ frame 👩🏽‍💻'],
        ['an emoji at the very end', 'done ✅🚀'],
      ])('when a reason holds %s, then it is accepted and stored exactly as sent', async (_what, reason) => {
        const { account, answer } = await debit(reason);
        expect(answer.status).toBe(201);
        expect(answer.body.balance).toBe(95);
        const ledger = await h.api('GET', `/v1/accounts/${account.id}/ledger`);
        const debits = (ledger.body.entries as { kind: string; reason: string }[]).filter(
          (e) => e.kind === 'debit',
        );
        expect(debits.map((e) => e.reason)).toEqual([reason]);
      });

      it('when a reason is 500 characters, then it is accepted; at 501, then 400 and nothing moves', async () => {
        const accepted = await debit('r'.repeat(500));
        expect(accepted.answer.status).toBe(201);
        expect((await ledgerOf(h, accepted.account.id)).find((e) => e.kind === 'debit')?.reason).toBe(
          'r'.repeat(500),
        );

        const refused = await debit('r'.repeat(501));
        expect(refused.answer.status).toBe(400);
        expect(refused.answer.body.error.code).toBe('invalid_request');
        expect(await checkedBalance(h, refused.account.id)).toBe(100);
      });

      it('when a reason is 500 emoji (1,000 UTF-16 units), then it is accepted; at 501 emoji, then 400', async () => {
        expect((await debit('😀'.repeat(500))).answer.status).toBe(201);
        const refused = await debit('😀'.repeat(501));
        expect(refused.answer.status).toBe(400);
        expect(await checkedBalance(h, refused.account.id)).toBe(100);
      });

      it('when a reason is empty, then 400 invalid_request', async () => {
        const { answer } = await debit('');
        expect(answer.status).toBe(400);
        expect(answer.body.error.code).toBe('invalid_request');
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

    describe('ledger cursors', () => {
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
    });

    it('when the tests of this file are done, then every account they touched balances', async () => {
      for (const accountId of touched) await checkedBalance(h, accountId);
    });
  });

  // Last in the file: every account its tests moved money on.
  it('when the money tests of this file are done, then every balance still equals the sum of its ledger', async () => {
    expect(accounts.length).toBeGreaterThan(0);
    expect(await driftedAccounts(h.sql, accounts)).toEqual([]);
  });
});
