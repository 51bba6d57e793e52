import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { createAccount, findBalanceDrift, findOrphanRows, releaseReservation } from '../../credits/index';
import { saveLowBalanceSettings } from '../../db/topups/low-balance';
import { freePort } from '../../scripts/local-services';
import { checkedBalance, grantDirectly, fundedAccount as fundedAccountOf } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';
import { callApi, ServiceProcess, type ApiAnswer } from '../support/service-process';
import { waitUntil } from '../support/wait';

/**
 * Usage as a hostile caller and an unlucky operator meet it: odd bytes and odd JSON, numbers at
 * and past 2^53, holds named wrongly or racing their expiry, the same batch from many clients at
 * once, forged cursors and odd moments, and an API process that dies after its commit or loses
 * its database connection mid-request. Whatever comes, each event is applied whole or not at all,
 * once, the answer is a clear one, and the books agree (balance = Σ ledger = Σ grants, each usage
 * ledger row = its events).
 *
 * The catalogue is config/catalog/features.json: llm-tokens 1 credit per 1,000 (refuse),
 * image-generation 5 per image (refuse), api-calls 1 per 100 (debt allowed).
 */

const MAX = Number.MAX_SAFE_INTEGER;

type Answer = ApiAnswer;

interface Result {
  id: unknown;
  accountId: unknown;
  status: string;
  credits?: number;
  ledgerEntryId?: number | null;
  error?: { code: string; message: string };
}

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

const results = (answer: Answer) => answer.body.results as Result[];

describe('usage against a hostile caller', () => {
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
  const usageRaw = (json: string) => h.api('POST', '/v1/usage', json);
  const storedEvents = (accountId: string) =>
    h.sql<
      {
        event_id: string;
        quantity: string;
        credits: string;
        ledger_entry_id: string | null;
        properties: any;
      }[]
    >`
      SELECT event_id, quantity::text, credits::text, ledger_entry_id::text, properties
      FROM usage_events WHERE account_id = ${accountId} ORDER BY seq`;

  /** Σ credits of the account's events and Σ of its usage ledger rows, exact (numeric). */
  async function burnedExactly(accountId: string) {
    const [row] = await h.sql<{ events: string; ledger: string }[]>`
      SELECT (SELECT COALESCE(SUM(credits::numeric), 0) FROM usage_events WHERE account_id = ${accountId})::text AS events,
             (SELECT COALESCE(-SUM(delta::numeric), 0) FROM credit_ledger
              WHERE account_id = ${accountId} AND kind = 'usage')::text AS ledger`;
    return { events: row?.events, ledger: row?.ledger };
  }

  describe('odd bytes', () => {
    it('when event IDs are non-ASCII, 255 characters of four bytes, or differ only by normalisation, then each is its own event, stored and listed as sent', async () => {
      const account = await fundedAccount(1000);
      const ids = [
        '日本語-イベント',
        '😀'.repeat(255),
        'caf\u00e9',
        'cafe\u0301',
        'x'.repeat(255),
        '__proto__',
        'constructor',
      ];
      const answer = await usage(ids.map((id) => ({ ...event(account, 'image-generation', 1), id })));
      expect(answer.status).toBe(200);
      expect(results(answer).map((r) => [r.id, r.status])).toEqual(ids.map((id) => [id, 'accepted']));
      expect((await storedEvents(account)).map((e) => e.event_id)).toEqual(ids);
      const listed = await h.api('GET', `/v1/accounts/${account}/usage?limit=100`);
      expect((listed.body.events as Array<{ id: string }>).map((e) => e.id).reverse()).toEqual(ids);
      // Sent again: duplicates, each found by its own ID.
      const again = await usage(
        ids.map((id) => ({ id, accountId: account, feature: 'image-generation', quantity: 1 })),
      );
      expect(results(again).map((r) => r.status)).toEqual(ids.map(() => 'duplicate'));
      expect(await checkedBalance(h, account)).toBe(1000 - 5 * ids.length);
    });

    it('when JSON escapes carry a lone surrogate, a NUL or a 256-character ID, then that event is refused and the others apply', async () => {
      const account = await fundedAccount(100);
      const good = event(account, 'image-generation', 1);
      const body = `{"events":[
        {"id":"evt-\\ud800","accountId":"${account}","feature":"image-generation","quantity":1},
        {"id":"evt-\\u0000","accountId":"${account}","feature":"image-generation","quantity":1},
        {"id":"${'y'.repeat(256)}","accountId":"${account}","feature":"image-generation","quantity":1},
        {"id":"evt-k","accountId":"${account}","feature":"image-generation","quantity":1,"properties":{"k\\u0000":1}},
        {"id":"evt-p","accountId":"${account}","feature":"image-generation","quantity":1,"properties":{"__proto__":{"admin":true}}},
        {"id":"evt-q","accountId":"${account}","feature":"image-generation","quantity":1,"properties":{"a":{"__proto__":1}}},
        {"id":"evt-s","accountId":"${account}","feature":"image-generation","quantity":"5"},
        {"id":"evt-z","accountId":"${account}","feature":"image-generation","quantity":-0},
        ${JSON.stringify(good)}]}`;
      const answer = await usageRaw(body);
      expect(answer.status).toBe(200);
      expect(results(answer).map((r) => `${r.status}:${r.error?.code ?? r.credits}`)).toEqual([
        ...Array(8).fill('refused:invalid_event'),
        'accepted:5',
      ]);
      // The IDs come back as sent (escaped by JSON again), whatever they held.
      expect(results(answer)[0]?.id).toBe('evt-\ud800');
      expect(results(answer)[4]?.error?.message).toMatch(/__proto__/);
      expect((await storedEvents(account)).map((e) => e.event_id)).toEqual([good.id]);
      expect(await checkedBalance(h, account)).toBe(95);
    });

    it('when two events differ only in where a NUL splits their account and ID, then they are not one event named twice: each is refused on its own', async () => {
      const account = await fundedAccount(100);
      const good = event(account, 'image-generation', 1);
      const answer = await usage([
        { accountId: `${account}`, id: 'x\u0000y', feature: 'image-generation', quantity: 1 },
        { accountId: `${account}\u0000x`, id: 'y', feature: 'image-generation', quantity: 1 },
        good,
      ]);
      expect(answer.status).toBe(200);
      expect(results(answer).map((r) => `${r.status}:${r.error?.code ?? r.credits}`)).toEqual([
        'refused:invalid_event',
        'refused:invalid_event',
        'accepted:5',
      ]);
      expect(await checkedBalance(h, account)).toBe(95);
    });

    it('when properties hold constructor keys, arrays, numbers and nulls inside, then they are stored and listed back as sent', async () => {
      const account = await fundedAccount(100);
      const properties = {
        constructor: { prototype: 1 },
        list: [1, 'a', null, { b: [] }],
        n: -0.5,
        none: null,
        e: '',
      };
      const sent = event(account, 'image-generation', 1, { properties });
      expect(results(await usage([sent]))[0]).toMatchObject({ status: 'accepted' });
      const [stored] = await storedEvents(account);
      expect(stored?.properties).toEqual(properties);
      const listed = await h.api('GET', `/v1/accounts/${account}/usage`);
      expect(listed.body.events[0].properties).toEqual(properties);
      // -0 and 0 are one number in JSON: the same body.
      const again = await usage([{ ...sent, properties: { ...properties, n: -0.5 } }]);
      expect(results(again)[0]?.status).toBe('duplicate');
    });

    it('when an event is nested deep in a field it does not expect, then that event is refused and the answer is still a clear one', async () => {
      const account = await fundedAccount(100);
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      const good = event(account, 'image-generation', 1);
      const answer = await usageRaw(
        `{"events":[{"id":${deep},"accountId":"${account}","feature":"image-generation","quantity":1},` +
          `{"id":"evt-deep-acct","accountId":${deep},"feature":"image-generation","quantity":1},` +
          `{"id":"evt-deep-props","accountId":"${account}","feature":"image-generation","quantity":1,"properties":{"d":${deep}}},` +
          `${JSON.stringify(good)}]}`,
      );
      expect(answer.status).toBe(200);
      expect(results(answer).map((r) => `${r.status}:${r.error?.code ?? r.credits}`)).toEqual([
        'refused:invalid_event',
        'refused:invalid_event',
        'refused:invalid_event',
        'accepted:5',
      ]);
      // What is not an ID is not sent back as one.
      expect(results(answer)[0]?.id).toBeNull();
      expect(results(answer)[1]?.accountId).toBeNull();
      expect(await checkedBalance(h, account)).toBe(95);
    });
  });

  describe('the same event, told otherwise', () => {
    it('when an event names a key twice, then the last one counts, and it is a duplicate of the body stored', async () => {
      const account = await fundedAccount(100);
      const id = `evt-${randomUUID()}`;
      const twice = `{"events":[{"id":"${id}","accountId":"${account}","feature":"image-generation","quantity":1,"quantity":3}]}`;
      expect(results(await usageRaw(twice))[0]).toMatchObject({ status: 'accepted', credits: 15 });
      expect((await storedEvents(account)).map((e) => e.quantity)).toEqual(['3']);
      expect(
        results(await usage([{ id, accountId: account, feature: 'image-generation', quantity: 3 }]))[0],
      ).toMatchObject({ status: 'duplicate', credits: 15 });
      expect(
        results(await usage([{ id, accountId: account, feature: 'image-generation', quantity: 1 }]))[0],
      ).toMatchObject({ status: 'conflict', error: { code: 'event_id_reused' } });
      // A repeated accountId: the last names the account, the first is not charged.
      const other = await fundedAccount(100);
      const swapped = `{"events":[{"id":"${id}","accountId":"${account}","accountId":"${other}","feature":"image-generation","quantity":1}]}`;
      expect(results(await usageRaw(swapped))[0]).toMatchObject({
        accountId: other,
        status: 'accepted',
        credits: 5,
      });
      expect(await checkedBalance(h, account)).toBe(85);
      expect(await checkedBalance(h, other)).toBe(95);
    });

    it('when the same event ID comes for two accounts, then each is its own event, whatever its body', async () => {
      const [first, second] = [await fundedAccount(100), await fundedAccount(100)];
      const id = `evt-${randomUUID()}`;
      const answer = await usage([
        { id, accountId: first, feature: 'image-generation', quantity: 1 },
        { id, accountId: second, feature: 'image-generation', quantity: 2 },
      ]);
      expect(results(answer).map((r) => [r.status, r.credits])).toEqual([
        ['accepted', 5],
        ['accepted', 10],
      ]);
      expect(results(answer)[0]?.ledgerEntryId).not.toBe(results(answer)[1]?.ledgerEntryId);
      // Each account's replay is judged against its own event.
      const replay = await usage([
        { id, accountId: second, feature: 'image-generation', quantity: 2 },
        { id, accountId: first, feature: 'image-generation', quantity: 2 },
      ]);
      expect(results(replay).map((r) => r.status)).toEqual(['duplicate', 'conflict']);
      expect([await checkedBalance(h, first), await checkedBalance(h, second)]).toEqual([95, 90]);
    });

    it('when a replay reorders nested properties or names the same instant in another offset, then it is a duplicate; when it adds or drops the timestamp, a conflict', async () => {
      const account = await fundedAccount(100);
      const sent = event(account, 'image-generation', 1, {
        timestamp: '2026-01-01T02:00:00+02:00',
        properties: { a: { x: 1, y: [1, { p: 1, q: 2 }] }, b: 2 },
      });
      expect(results(await usage([sent]))[0]?.status).toBe('accepted');
      const same = {
        ...sent,
        timestamp: '2026-01-01T00:00:00.000Z',
        properties: { b: 2, a: { y: [1, { q: 2, p: 1 }], x: 1 } },
      };
      expect(results(await usage([same]))[0]?.status).toBe('duplicate');
      const withoutTimestamp = {
        id: sent.id,
        accountId: account,
        feature: 'image-generation',
        quantity: 1,
        properties: same.properties,
      };
      expect(results(await usage([withoutTimestamp]))[0]?.status).toBe('conflict');
      const untimed = event(account, 'image-generation', 1);
      expect(results(await usage([untimed]))[0]?.status).toBe('accepted');
      expect(results(await usage([{ ...untimed, timestamp: new Date().toISOString() }]))[0]?.status).toBe(
        'conflict',
      );
      expect(await checkedBalance(h, account)).toBe(90);
    });
  });

  describe('huge values', () => {
    it('when usage that allows debt burns past 2^53 credits in one request, then what cannot be counted exactly is refused and every ledger row equals its events', async () => {
      const funds = 2 ** 52;
      const account = await fundedAccount(funds);
      const answer = await usage(Array.from({ length: 200 }, () => event(account, 'api-calls', MAX)));
      expect(answer.status).toBe(200);
      const codes = new Set(results(answer).map((r) => r.error?.code ?? r.status));
      expect(codes).toEqual(new Set(['accepted', 'balance_out_of_range']));
      const accepted = results(answer).filter((r) => r.status === 'accepted');
      const burned = accepted.reduce((sum, r) => sum + BigInt(r.credits ?? 0), 0n);
      expect(burned <= BigInt(MAX)).toBe(true);
      expect(BigInt(answer.body.credits)).toBe(burned);
      expect(await burnedExactly(account)).toEqual({ events: String(burned), ledger: String(burned) });
      // Priced once: every accepted unit at 1 credit per 100, rounded down once.
      expect(burned).toBe((BigInt(accepted.length) * BigInt(MAX)) / 100n);
      expect(BigInt(await checkedBalance(h, account))).toBe(BigInt(funds) - burned);
      expect((await findOrphanRows(h.sql)).usageRows).toBe(0);
    });

    it('when a meter accrues past 2^53 units over requests, then each request burns exactly the credits its units complete', async () => {
      const account = await fundedAccount(30_000_000_000_000);
      const first = await usage([event(account, 'llm-tokens', MAX)]);
      const second = await usage([event(account, 'llm-tokens', MAX)]);
      expect([results(first)[0]?.credits, results(second)[0]?.credits]).toEqual([
        9007199254740, 9007199254741,
      ]);
      const [meter] = await h.sql<{ meter: { quantity: string } }[]>`
        SELECT usage_meters -> 'llm-tokens' AS meter FROM credit_balances WHERE account_id = ${account}`;
      expect(meter?.meter.quantity).toBe((2n * BigInt(MAX)).toString());
      // 2 × (2^53 − 1) = …481982: 18 more units complete a credit, 17 do not.
      const check = await h.api('POST', '/v1/check', {
        accountId: account,
        feature: 'llm-tokens',
        quantity: 18,
      });
      expect(check.body).toMatchObject({ allowed: true, credits: 1 });
      expect(results(await usage([event(account, 'llm-tokens', 17)]))[0]).toMatchObject({ credits: 0 });
      expect(results(await usage([event(account, 'llm-tokens', 1)]))[0]).toMatchObject({ credits: 1 });
      const burned = (2n * BigInt(MAX) + 18n) / 1000n;
      expect(await burnedExactly(account)).toEqual({ events: String(burned), ledger: String(burned) });
      expect(await checkedBalance(h, account)).toBe(30_000_000_000_000 - Number(burned));
    });

    it('when one request carries 1,000 events for 1,000 accounts, then each account burns its own in one transaction', async () => {
      const ids = Array.from({ length: 1000 }, () => `acct_${randomUUID()}`);
      for (let i = 0; i < ids.length; i += 50) {
        await Promise.all(
          ids.slice(i, i + 50).map((id) => createAccount(h.sql, { id, email: `${id}@customers.test` })),
        );
      }
      accounts.push(...ids);
      // api-calls allow debt: no grant needed, each account owes 3 credits.
      const answer = await usage(ids.map((id) => event(id, 'api-calls', 300)));
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ accepted: 1000, refused: 0, credits: 3000 });
      const ledgerIds = new Set(results(answer).map((r) => r.ledgerEntryId));
      expect(ledgerIds.size).toBe(1000);
      const [row] = await h.sql<{ n: number; total: string }[]>`
        SELECT count(*)::int AS n, SUM(balance)::text AS total FROM credit_balances
        WHERE account_id = ANY (${ids}::text[]) AND balance = -3`;
      expect(row).toEqual({ n: 1000, total: '-3000' });
    });

    it('when one request names 1,000 features no catalogue has, then each is refused and nothing is written', async () => {
      const account = await fundedAccount(100);
      const answer = await usage(Array.from({ length: 1000 }, (_, i) => event(account, `unknown-${i}`, 1)));
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ accepted: 0, refused: 1000 });
      expect(new Set(results(answer).map((r) => r.error?.code))).toEqual(new Set(['feature_not_found']));
      expect(await storedEvents(account)).toEqual([]);
      expect(await checkedBalance(h, account)).toBe(100);
    });
  });

  describe('holds', () => {
    const hold = async (accountId: string, quantity: number, ttlSeconds = 600) => {
      const answer = await h.api('POST', '/v1/check', {
        accountId,
        feature: 'image-generation',
        quantity,
        reserve: { ttlSeconds, idempotencyKey: `check-${randomUUID()}` },
      });
      expect(answer.body.reservation).toMatchObject({ status: 'held' });
      return answer.body.reservation.id as string;
    };
    const reservationOf = (accountId: string, id: string) =>
      h
        .api('GET', `/v1/accounts/${accountId}/reservations/${id}`)
        .then((a) => a.body as Record<string, unknown>);
    const summary = (accountId: string) =>
      h.api('GET', `/v1/accounts/${accountId}`).then((a) => a.body as Record<string, unknown>);

    it("when an event names another account's hold, an expired one or one twice, then only the first naming of a live own hold spends it", async () => {
      const [mine, theirs] = [await fundedAccount(100), await fundedAccount(100)];
      const own = await hold(mine, 2); // 10 credits
      const foreign = await hold(theirs, 2);
      const lapsed = await hold(mine, 1); // 5 credits, its time up but no timer ran yet
      await h.sql`UPDATE credit_reservations SET expires_at = now() - interval '1 second' WHERE id = ${lapsed}`;
      const answer = await usage([
        event(mine, 'image-generation', 2, { reservationId: foreign }),
        event(mine, 'image-generation', 2, { reservationId: lapsed }),
        event(mine, 'image-generation', 2, { reservationId: own }),
        event(mine, 'image-generation', 2, { reservationId: own }),
        event(mine, 'image-generation', 1, { reservationId: `rsv_${'0'.repeat(32)}` }),
      ]);
      expect(results(answer).map((r) => r.error?.code ?? `${r.status}:${r.credits}`)).toEqual([
        'reservation_not_found',
        'reservation_settled',
        'accepted:10',
        'reservation_settled',
        'reservation_not_found',
      ]);
      expect(await reservationOf(theirs, foreign)).toMatchObject({ status: 'held' });
      expect(await reservationOf(mine, own)).toMatchObject({ status: 'captured' });
      expect(await summary(theirs)).toMatchObject({ balance: 100, held: 10, available: 90 });
      // The lapsed hold still counts until its timer frees it.
      expect(await summary(mine)).toMatchObject({ balance: 90, held: 5, available: 85 });
      await releaseReservation(h.sql, { accountId: mine, reservationId: lapsed, as: 'expired' });
      expect(await summary(mine)).toMatchObject({ balance: 90, held: 0, available: 90 });
      // A captured hold named again, in a later request: refused, nothing burns.
      const again = await usage([event(mine, 'image-generation', 1, { reservationId: own })]);
      expect(results(again)[0]?.error?.code).toBe('reservation_settled');
      expect(await checkedBalance(h, mine)).toBe(90);
    });

    it('when usage naming holds races their expiry, then each hold is either captured by its event or expired, never both, and nothing is held after', async () => {
      const account = await fundedAccount(200);
      const holds = await Promise.all(Array.from({ length: 12 }, () => hold(account, 2)));
      // Every hold lapses in the next moments, one after another, while its event and its timer race.
      await h.sql`
        UPDATE credit_reservations r SET expires_at = now() + make_interval(secs => s.n * 0.02)
        FROM unnest(${holds}::text[]) WITH ORDINALITY AS s(id, n) WHERE r.id = s.id`;
      const raced = await Promise.all(
        holds.flatMap((reservationId, i) => [
          new Promise((resolve) => setTimeout(resolve, i * 20)).then(() =>
            usage([event(account, 'image-generation', 2, { reservationId })]),
          ),
          waitUntil(
            async () =>
              (
                await h.sql`SELECT 1 FROM credit_reservations WHERE id = ${reservationId} AND expires_at <= now()`
              ).length > 0,
            { intervalMs: 5, what: 'the hold lapsing' },
          ).then(() => releaseReservation(h.sql, { accountId: account, reservationId, as: 'expired' })),
        ]),
      );
      const answers = raced.filter((_, i) => i % 2 === 0) as Answer[];
      let captured = 0;
      for (const [i, reservationId] of holds.entries()) {
        const result = results(answers[i] as Answer)[0];
        const after = await reservationOf(account, reservationId);
        if (result?.status === 'accepted') {
          captured += 1;
          expect(after).toMatchObject({ status: 'captured', captured: 10 });
        } else {
          expect(result?.error?.code).toBe('reservation_settled');
          expect(after.status).toBe('expired');
        }
      }
      expect(await summary(account)).toMatchObject({ held: 0, balance: 200 - 10 * captured });
      expect(await checkedBalance(h, account)).toBe(200 - 10 * captured);
    });
  });

  describe('concurrency', () => {
    it('when 20 clients send the same batch across 50 accounts at once, then every event counts once and every answer agrees with the first', async () => {
      const ids = await Promise.all(Array.from({ length: 50 }, () => fundedAccount(1000)));
      const batch = Array.from({ length: 500 }, (_, i) =>
        event(ids[i % 50] as string, 'image-generation', 1),
      );
      const answers = await Promise.all(Array.from({ length: 20 }, () => usage(batch)));
      expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
      expect(answers.reduce((sum, a) => sum + (a.body.accepted as number), 0)).toBe(500);
      for (const [i] of batch.entries()) {
        const each = answers.map((a) => results(a)[i] as Result);
        expect(each.filter((r) => r.status === 'accepted')).toHaveLength(1);
        expect(new Set(each.map((r) => `${r.credits}:${r.ledgerEntryId}`)).size).toBe(1);
      }
      for (const id of ids) expect(await checkedBalance(h, id)).toBe(950);
    });

    it('when requests name overlapping accounts in opposite orders, then none deadlocks and each burns its own', async () => {
      const ids = await Promise.all(Array.from({ length: 10 }, () => fundedAccount(10_000)));
      for (const id of ids.slice(0, 3)) await saveLowBalanceSettings(h.sql, id, 9_950);
      const forward = () => ids.map((id) => event(id, 'image-generation', 1));
      const backward = () =>
        [...ids].reverse().flatMap((id) => [event(id, 'image-generation', 1), event(id, 'api-calls', 150)]);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => usage(i % 2 === 0 ? forward() : backward())),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
      expect(answers.every((a) => a.body.refused === 0)).toBe(true);
      // 10 forward requests burn 5 each, 10 backward ones 5 + 1 (api-calls: 1.5 credits accruing).
      for (const id of ids) expect(await checkedBalance(h, id)).toBe(10_000 - 50 - 50 - 15);
    });
  });

  describe('reads with odd arguments', () => {
    const page = (accountId: string, query: string) =>
      h.api('GET', `/v1/accounts/${accountId}/usage?${query}`);
    const cursorOf = (text: string) => Buffer.from(text).toString('base64url');

    it('when the usage listing gets a forged cursor or a limit out of range, then it answers 400 or a page, never an error of its own', async () => {
      const account = await fundedAccount(100);
      await usage([event(account, 'image-generation', 1), event(account, 'image-generation', 1)]);
      for (const query of [
        'limit=0',
        'limit=101',
        'limit=-1',
        'limit=1e9',
        'limit=abc',
        'limit=1.5',
        'cursor=',
        'cursor=@@',
        `cursor=${'A'.repeat(65)}`,
        `cursor=${cursorOf('-1.1')}`,
        `cursor=${cursorOf('1.1.1')}`,
        `cursor=${cursorOf('x.1')}`,
        'ledgerEntryId=0',
        'ledgerEntryId=-1',
        'ledgerEntryId=9007199254740992',
        'other=1',
      ]) {
        const answer = await page(account, query);
        expect([query, answer.status, answer.body.error?.code]).toEqual([query, 400, 'invalid_request']);
      }
      for (const forged of [
        '9999999999999999999.9999999999999999999',
        '9223372036854775807.9223372036854775807',
        '0.0',
        '1.1',
        '99999999999999999.1',
        '1765000000000000.9223372036854775808',
      ]) {
        const answer = await page(account, `cursor=${cursorOf(forged)}`);
        expect([forged, answer.status]).toEqual([forged, expect.any(Number)]);
        expect([forged, answer.status < 500]).toEqual([forged, true]);
        if (answer.status === 200) expect(answer.body.events).toEqual(expect.any(Array));
        else expect(answer.body.error.code).toBe('invalid_request');
      }
      // A ledger row of another account leads to none of this account's events.
      const other = await fundedAccount(100);
      const theirs = results(await usage([event(other, 'image-generation', 1)]))[0]?.ledgerEntryId;
      expect((await page(account, `ledgerEntryId=${theirs}`)).body.events).toEqual([]);
      expect((await page(account, 'limit=100')).body.events).toHaveLength(2);
    });

    it('when the balance is asked before the account existed, at odd offsets, far back or never, then it answers what the ledger had or 400', async () => {
      const account = await fundedAccount(100);
      await usage([event(account, 'image-generation', 2)]);
      const at = (value: string) =>
        h.api('GET', `/v1/accounts/${account}/balance?at=${encodeURIComponent(value)}`);
      for (const value of [
        '1970-01-01T00:00:00Z',
        '0001-01-01T00:00:00Z',
        '2020-01-01T00:00:00+14:00',
        '2020-01-01T00:00:00.123456-12:00',
      ]) {
        expect([value, (await at(value)).body]).toEqual([
          value,
          { at: expect.any(String), balance: 0, held: 0, available: 0, ledgerEntryId: null },
        ]);
      }
      expect(
        (await at(new Date(Date.now() + 1000).toISOString().replace('Z', '+00:00'))).status,
      ).toBeLessThan(500);
      expect((await at(new Date().toISOString())).body).toMatchObject({ balance: 90, available: 90 });
      for (const value of [
        '',
        'now',
        '2026-02-30T00:00:00Z',
        '2026-01-01',
        '2026-01-01T00:00:00',
        '0000-01-01T00:00:00Z',
        '+275760-09-13T00:00:00Z',
        '9999-12-31T23:59:59Z',
        '2999-01-01T00:00:00Z',
      ]) {
        const answer = await at(value);
        expect([value, answer.status, answer.body.error?.code]).toEqual([value, 400, 'invalid_request']);
      }
      expect((await h.api('GET', `/v1/accounts/${account}/balance`)).status).toBe(400);
      expect(
        (await h.api('GET', `/v1/accounts/acct_${randomUUID()}/balance?at=2020-01-01T00:00:00Z`)).status,
      ).toBe(404);
    });
  });

  describe('check with odd arguments', () => {
    it('when a check names a quantity past 2^53, an unknown feature or a hold of 0 s or beyond 7 days, then it is refused clearly and nothing is held', async () => {
      const account = await fundedAccount(100);
      const check = (body: Record<string, unknown>) =>
        h.api('POST', '/v1/check', { accountId: account, ...body });
      const reserve = (ttlSeconds: unknown) => ({ ttlSeconds, idempotencyKey: `check-${randomUUID()}` });
      for (const body of [
        { feature: 'image-generation', quantity: 2 ** 53 },
        { feature: 'image-generation', quantity: 1e308 },
        { feature: 'image-generation', quantity: '5' },
        { feature: 'image-generation', quantity: 0 },
        { feature: 'image-generation', quantity: 1, reserve: reserve(0) },
        { feature: 'image-generation', quantity: 1, reserve: reserve(7 * 24 * 3600 + 1) },
        { feature: 'image-generation', quantity: 1, reserve: reserve(1e12) },
        { feature: 'image-generation', quantity: 1, reserve: reserve(1.5) },
        { feature: 'Image-Generation', quantity: 1 },
        { feature: '日本', quantity: 1 },
      ]) {
        const answer = await check(body);
        expect([body, answer.status, answer.body.error?.code]).toEqual([body, 400, 'invalid_request']);
      }
      expect(
        (await check({ feature: 'no-such-feature', quantity: 1, reserve: reserve(60) })).body.error.code,
      ).toBe('feature_not_found');
      // Costing more than a balance can hold: not allowed, and no hold.
      const huge = await check({ feature: 'image-generation', quantity: MAX, reserve: reserve(60) });
      expect(huge.body).toMatchObject({ allowed: false, credits: MAX, reservation: null });
      // A fraction of a credit: allowed, nothing to hold.
      const tiny = await check({ feature: 'llm-tokens', quantity: 1, reserve: reserve(60) });
      expect(tiny.body).toMatchObject({ allowed: true, credits: 0, reservation: null });
      const rows = await h.sql`SELECT 1 FROM credit_reservations WHERE account_id = ${account}`;
      expect(rows).toHaveLength(0);
      // The longest hold there is: 7 days.
      const week = await check({ feature: 'image-generation', quantity: 1, reserve: reserve(7 * 24 * 3600) });
      expect(week.body.reservation).toMatchObject({ status: 'held', amount: 5 });
      expect(Date.parse(week.body.reservation.expiresAt) - Date.now()).toBeGreaterThan(
        7 * 24 * 3600_000 - 60_000,
      );
    });
  });

  it('after all of the above, verify:ledger finds no drift and every usage row burned exactly its events', async () => {
    const drift = await findBalanceDrift(h.sql);
    expect(drift.filter((d) => accounts.includes(d.accountId))).toEqual([]);
    expect((await findOrphanRows(h.sql)).usageRows).toBe(0);
  });
});

/**
 * The API as its own process, against the tests' PostgreSQL: killed after a request's commit but
 * before its answer, and cut off from PostgreSQL mid-request. The client that never got an
 * answer sends the request again and is told, event by event, what the first one did.
 */
describe('usage when the API process dies after its commit or loses its connection', () => {
  const API_APP = `credits-usage-hostile-${process.pid}`;
  const API_KEY = 'test_usage_hostile_api_key_0123';
  let h: Harness;
  let api: ServiceProcess;
  let apiUrl: string;
  /** A Temporal that accepts connections and never answers: a start after the commit waits on it. */
  let silentTemporal: net.Server;
  const sockets = new Set<net.Socket>();

  async function startApi() {
    api = new ServiceProcess('api', 'api/main.ts', {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_URL: process.env.TEST_DATABASE_URL ?? '',
      TEMPORAL_ADDRESS: `127.0.0.1:${(silentTemporal.address() as net.AddressInfo).port}`,
      TEMPORAL_TASK_QUEUE: `test-usage-hostile-${randomUUID()}`,
      PGAPPNAME: API_APP,
      PORT: String(new URL(apiUrl).port),
      HOST: '127.0.0.1',
      STRIPE_WEBHOOK_SECRET: 'whsec_test_usage_hostile_0123456789',
      BILLING_API_KEYS: API_KEY,
    });
    await api.waitForOutput(/api listening/, 60_000);
  }

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    silentTemporal = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silentTemporal.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${await freePort()}`;
    await startApi();
  }, 120_000);

  beforeEach(async () => {
    if (!api.running) await startApi();
  });

  afterAll(async () => {
    await api?.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      silentTemporal ? silentTemporal.close(() => resolve()) : resolve(),
    );
    await h?.close();
  });

  const call = (method: string, route: string, body?: unknown) =>
    callApi(apiUrl, API_KEY, method, route, body);
  const sendUsage = (events: unknown[]) => call('POST', '/v1/usage', { events });

  async function fundedAccounts(count: number, credits: number) {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const { id } = await h.newAccount();
      await grantDirectly(h.sql, id, { key: 'fund', amount: credits });
      ids.push(id);
    }
    return ids;
  }

  const storedOf = (ids: readonly string[]) =>
    h.sql<{ account_id: string; event_id: string; credits: string; ledger_entry_id: string | null }[]>`
      SELECT account_id, event_id, credits::text, ledger_entry_id::text FROM usage_events
      WHERE account_id = ANY (${ids as string[]}::text[])`;

  const booksAgree = async (ids: readonly string[]) => {
    const drift = await findBalanceDrift(h.sql);
    expect(drift.filter((d) => ids.includes(d.accountId))).toEqual([]);
    expect((await findOrphanRows(h.sql)).usageRows).toBe(0);
  };

  it('when the API process is SIGKILLed after the commit, before the answer, then the retry answers every event duplicate with what the first burned', async () => {
    const ids = await fundedAccounts(3, 1000);
    // The first account crosses its low-balance threshold: after the commit, the API starts the
    // notice's workflow on a Temporal that never answers, so the answer is never sent.
    await saveLowBalanceSettings(h.sql, ids[0] as string, 990);
    const events = [
      ...Array.from({ length: 30 }, (_, i) => event(ids[i % 3] as string, 'image-generation', 1)),
      ...Array.from({ length: 6 }, (_, i) => event(ids[i % 3] as string, 'llm-tokens', 700)),
    ];
    const pending = sendUsage(events).catch((error: unknown) => error);
    const committed = await waitUntil(
      async () => {
        const rows = await storedOf(ids);
        return rows.length === events.length ? rows : null;
      },
      { what: 'the request committed', intervalMs: 20 },
    );
    await api.kill();
    expect(String(await pending)).toMatch(/TypeError/);

    await startApi();
    const retried = await sendUsage(events);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ accepted: 0, duplicates: events.length, credits: 0 });
    const first = new Map(committed.map((row) => [`${row.account_id}/${row.event_id}`, row]));
    for (const [i, sent] of events.entries()) {
      const row = first.get(`${sent.accountId}/${sent.id}`);
      expect(results(retried)[i]).toEqual({
        id: sent.id,
        accountId: sent.accountId,
        status: 'duplicate',
        credits: Number(row?.credits),
        ledgerEntryId: row?.ledger_entry_id === null ? null : Number(row?.ledger_entry_id),
      });
    }
    // 10 images (50 credits) and 1,400 tokens (1 credit) per account, once.
    for (const id of ids) expect(await checkedBalance(h, id)).toBe(1000 - 51);
    // The notice was recorded with the burn: the maintenance sweep starts it.
    const notices = await h.sql`SELECT 1 FROM balance_follow_ups WHERE account_id = ${ids[0] as string}`;
    expect(notices).toHaveLength(1);
    await booksAgree(ids);
  }, 180_000);

  it("when PostgreSQL terminates the request's backend mid-request, then it answers 503, nothing of it is applied, and the retry succeeds", async () => {
    const ids = await fundedAccounts(3, 1000);
    const events = Array.from({ length: 60 }, (_, i) => event(ids[i % 3] as string, 'image-generation', 1));
    // Hold one account's lock, so that the request waits inside its transaction.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = h.sql.begin(async (tx) => {
      await tx`SELECT 1 FROM credit_balances WHERE account_id = ${ids[1] as string} FOR UPDATE`;
      locked();
      await released;
    });
    await isLocked;
    const pending = sendUsage(events);
    const [waiting] = await waitUntil(
      async () => {
        const rows = await h.sql<{ pid: number }[]>`
          SELECT pid FROM pg_stat_activity WHERE application_name = ${API_APP} AND wait_event_type = 'Lock'`;
        return rows.length > 0 ? rows : null;
      },
      { what: 'the usage transaction waiting for the lock', intervalMs: 20 },
    );
    await h.sql`SELECT pg_terminate_backend(${waiting?.pid as number})`;
    const answer = await pending;
    release();
    await holding;
    expect(answer).toMatchObject({ status: 503, body: { error: { code: 'database_unavailable' } } });
    api.assertRunning();
    expect(await storedOf(ids)).toEqual([]);
    for (const id of ids) expect(await checkedBalance(h, id)).toBe(1000);

    const retried = await sendUsage(events);
    expect(retried).toMatchObject({ status: 200, body: { accepted: 60, credits: 300 } });
    for (const id of ids) expect(await checkedBalance(h, id)).toBe(900);
    await booksAgree(ids);
  }, 120_000);
});
