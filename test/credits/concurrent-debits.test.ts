import { randomUUID } from 'node:crypto';
import { checkedBalance, grantDirectly } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

/**
 * Debits at once with distinct keys never conflict: an `idempotency_key_reused` answer means the
 * account's ledger already holds that key for another amount or reason, and the 409 says which
 * entry, when, with what amount and whether the reason matched, so a caller can see it is its own.
 */
describe('concurrent debits and idempotency keys', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const funded = async (credits: number) => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'funds', amount: credits });
    return account;
  };
  const debit = (accountId: string, body: { amount: number; idempotencyKey: string; reason: string }) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, body);
  const statusCounts = (answers: Array<{ status: number }>) =>
    answers.reduce<Record<number, number>>(
      (counts, { status }) => ({ ...counts, [status]: (counts[status] ?? 0) + 1 }),
      {},
    );

  it('when 200 debits with distinct keys arrive at once on one account, then every answer is 201, none is 409, and the balance is exact', async () => {
    const account = await funded(1000);
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, index) =>
        debit(account.id, { amount: 3, idempotencyKey: `k-${index}`, reason: 'render' }),
      ),
    );
    expect(statusCounts(answers)).toEqual({ 201: 200 });
    expect(await checkedBalance(h, account.id)).toBe(1000 - 600);
    // Each debit left its own balance: the debits were applied one after another.
    expect(new Set(answers.map((answer) => answer.body.balance as number)).size).toBe(200);
  });

  it('when 200 debits with distinct keys arrive at once across 20 accounts, then every answer is 201 and each balance is exact', async () => {
    const accounts = await Promise.all(Array.from({ length: 20 }, () => funded(100)));
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, index) =>
        // The same keys on every account: keys belong to their account.
        debit(accounts[index % 20]?.id ?? '', {
          amount: 7,
          idempotencyKey: `k-${Math.floor(index / 20)}`,
          reason: 'render',
        }),
      ),
    );
    expect(statusCounts(answers)).toEqual({ 201: 200 });
    for (const account of accounts) expect(await checkedBalance(h, account.id)).toBe(100 - 70);
  });

  it('when keys k-0…k-199 are sent again to the same account with another reason (a second run of a test script), then each is 409 naming its first use, and nothing moves', async () => {
    const account = await funded(1000);
    const firstRun = await Promise.all(
      Array.from({ length: 200 }, (_, index) =>
        debit(account.id, { amount: 1, idempotencyKey: `k-${index}`, reason: 'run 1' }),
      ),
    );
    expect(statusCounts(firstRun)).toEqual({ 201: 200 });
    const secondRun = await Promise.all(
      Array.from({ length: 200 }, (_, index) =>
        debit(account.id, { amount: 1, idempotencyKey: `k-${index}`, reason: 'run 2' }),
      ),
    );
    expect(statusCounts(secondRun)).toEqual({ 409: 200 });
    for (const [index, answer] of secondRun.entries()) {
      expect(answer.body.error).toMatchObject({
        code: 'idempotency_key_reused',
        details: { entryId: firstRun[index]?.body.entryId, amount: 1, reasonMatches: false },
      });
    }
    expect(await checkedBalance(h, account.id)).toBe(800);
  });

  it('when a key is reused with another amount, then the 409 says when it was first used, for which entry, its amount and whether the reason matched', async () => {
    const account = await funded(100);
    const sentAt = Date.now();
    const first = await debit(account.id, { amount: 5, idempotencyKey: 'job-7', reason: 'render' });
    expect(first.status).toBe(201);
    const reused = await debit(account.id, { amount: 6, idempotencyKey: 'job-7', reason: 'render' });
    expect(reused).toEqual({
      status: 409,
      body: {
        error: {
          code: 'idempotency_key_reused',
          message: expect.stringContaining(`ledger entry ${first.body.entryId as number}`),
          details: {
            firstUsedAt: expect.any(String),
            entryId: first.body.entryId,
            amount: 5,
            reasonMatches: true,
          },
        },
      },
    });
    const firstUsedAt = Date.parse(reused.body.error.details.firstUsedAt as string);
    expect(Math.abs(firstUsedAt - sentAt)).toBeLessThan(60_000);
    expect(reused.body.error.message).toContain(reused.body.error.details.firstUsedAt);
    expect(await checkedBalance(h, account.id)).toBe(95);
  });

  it('when another account used the same key first, then this account debits anew and a later conflict here tells of this account only', async () => {
    const [mine, theirs] = await Promise.all([funded(100), funded(100)]);
    const key = `shared-${randomUUID()}`;
    const theirDebit = await debit(theirs.id, {
      amount: 40,
      idempotencyKey: key,
      reason: 'their secret project',
    });
    const myDebit = await debit(mine.id, { amount: 5, idempotencyKey: key, reason: 'render' });
    expect([theirDebit.status, myDebit.status]).toEqual([201, 201]);
    const conflict = await debit(mine.id, { amount: 9, idempotencyKey: key, reason: 'render' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.details).toMatchObject({ entryId: myDebit.body.entryId, amount: 5 });
    const told = JSON.stringify(conflict.body);
    expect(told).not.toContain(String(theirDebit.body.entryId));
    expect(told).not.toContain('their secret project');
    expect(told).not.toContain(theirs.id);
    expect(await checkedBalance(h, mine.id)).toBe(95);
    expect(await checkedBalance(h, theirs.id)).toBe(60);
  });
});
