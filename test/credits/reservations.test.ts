import { randomUUID } from 'node:crypto';
import { holdCredits } from '../../credits/reservations';
import { checkedBalance, grantDirectly, ledgerOf } from '../support/billing';
import { API_KEY, startHarness, type Harness } from '../support/harness';
import { sleep } from '../support/wait';

/**
 * Holds on credits through the API: the same hold sent at once, captures racing releases, holds
 * with impossible values, and captures at, after and again after a hold's TTL. No worker runs
 * here, so no timer releases a hold: only the capture's own check can refuse it.
 */
describe('credit reservations', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An account holding `credits`, granted directly. */
  const funded = async (credits: number) => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'funds', amount: credits });
    return account;
  };

  describe('holds sent at once, captured and released at once, or impossible', () => {
    it('when one hold is sent 50 times at once, then one reservation holds the credits once; the key with another amount is 409', async () => {
      const account = await funded(100);
      const body = { amount: 30, ttlSeconds: 600, idempotencyKey: `hold-${randomUUID()}` };
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          h.api('POST', `/v1/accounts/${account.id}/reservations`, body, API_KEY),
        ),
      );
      // One made the hold; 49 are its replays, answered alike (api() does not show the replay header).
      expect(answers.filter((answer) => answer.status === 201)).toHaveLength(50);
      expect(new Set(answers.map((answer) => JSON.stringify(answer.body))).size).toBe(1);
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

  describe('a capture after the TTL, before any timer', () => {
    it('when a hold is captured after its TTL (before any timer released it), then it is refused and nothing is debited', async () => {
      const account = await funded(100);
      // Made in the database, so no timer runs: the TTL passes with the hold still marked held,
      // as it does while the worker is down or the timer lags.
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 1,
        idempotencyKey: `job-${randomUUID()}`,
      });
      await sleep(1500);

      const capture = await h.api(
        'POST',
        `/v1/accounts/${account.id}/reservations/${reservation.id}/capture`,
        { reason: 'late' },
        API_KEY,
      );
      expect(capture.status).toBe(409);
      expect(await checkedBalance(h, account.id)).toBe(100);
    });
  });

  describe('captures at and after the TTL', () => {
    const capture = (accountId: string, reservationId: string) =>
      h.api(
        'POST',
        `/v1/accounts/${accountId}/reservations/${reservationId}/capture`,
        { reason: 'render' },
        API_KEY,
      );

    it('when a hold is captured the moment its TTL is reached, then 409 reservation_settled and nothing is debited', async () => {
      const account = await funded(100);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 3600,
        idempotencyKey: `job-${randomUUID()}`,
      });
      // Its TTL is now: no timer runs in this harness, so only the capture's own check can refuse.
      await h.sql`UPDATE credit_reservations SET expires_at = now() WHERE id = ${reservation.id}`;

      const answer = await capture(account.id, reservation.id);
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('reservation_settled');
      expect(await checkedBalance(h, account.id)).toBe(100);
      expect((await ledgerOf(h, account.id)).filter((e) => e.kind === 'debit')).toEqual([]);
      const [row] = await h.sql<{ status: string; held: string }[]>`
        SELECT r.status, b.held::text AS held FROM credit_reservations r
        JOIN credit_balances b USING (account_id) WHERE r.id = ${reservation.id}`;
      expect(row).toEqual({ status: 'held', held: '40' });
    });

    it('when a hold is captured after its TTL has passed, then 409 reservation_settled and nothing is debited', async () => {
      const account = await funded(100);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 1,
        idempotencyKey: `job-${randomUUID()}`,
      });
      await sleep(1200);
      const answer = await capture(account.id, reservation.id);
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('reservation_settled');
      expect(await checkedBalance(h, account.id)).toBe(100);
    });

    it('when a captured hold is captured again after its TTL, then the replay answers the same debit and nothing more is taken', async () => {
      const account = await funded(100);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 3600,
        idempotencyKey: `job-${randomUUID()}`,
      });
      const first = await capture(account.id, reservation.id);
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ status: 'captured', balance: 60 });
      await h.sql`UPDATE credit_reservations SET expires_at = now() - interval '1 minute' WHERE id = ${reservation.id}`;

      const replay = await capture(account.id, reservation.id);
      expect(replay.status).toBe(201);
      expect(replay.body.entryId).toBe(first.body.entryId);
      expect(replay.body.balance).toBe(60);
      expect(await checkedBalance(h, account.id)).toBe(60);
      expect((await ledgerOf(h, account.id)).filter((e) => e.kind === 'debit')).toHaveLength(1);
    });
  });
});
