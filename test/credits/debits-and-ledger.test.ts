import { createAccount } from '../../credits/accounts';
import { debitKey } from '../../credits/debits';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { balanceOf, driftedAccounts } from '../support/db';
import { startHarness, type Harness } from '../support/harness';

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

  // Last in the file: every account its tests moved money on.
  it('when the money tests of this file are done, then every balance still equals the sum of its ledger', async () => {
    expect(accounts.length).toBeGreaterThan(0);
    expect(await driftedAccounts(h.sql, accounts)).toEqual([]);
  });
});
