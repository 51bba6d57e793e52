import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAccount, findBalanceDrift, findOrphanRows } from '../../credits/index';
import { createSql, type Sql } from '../../db/client';
import { freePort } from '../../scripts/local-services';
import { grantDirectly } from '../support/billing';
import { migrateForService, RestartablePostgres } from '../support/restartable-postgres';
import { callApi, ServiceProcess, type ApiAnswer } from '../support/service-process';
import { waitUntil } from '../support/wait';

/**
 * Usage when things break under it. The API runs as its own process, as in production, against a
 * PostgreSQL of this file's own: the server goes down with an immediate shutdown in the middle of
 * a usage transaction, and the API process is SIGKILLed in the middle of requests. Either way a
 * request's events are applied whole or not at all, and sending the same requests again counts
 * every event exactly once.
 *
 * To have a usage transaction in flight at the moment it breaks, the test holds the lock of one
 * of the request's accounts: the request then waits inside its transaction, on its own
 * connection, until the break.
 */

const API_APP = 'credits-usage-failures-api';
const API_KEY = 'test_usage_failures_api_key_0123';
const FUNDS = 100_000;
/** image-generation: 5 credits per image, usage beyond the credits refused. */
const FEATURE = 'image-generation';
const PRICE = 5;

type Answer = ApiAnswer;

describe('usage when PostgreSQL restarts or the API process dies mid-request', () => {
  let dataRoot: string;
  let postgres: RestartablePostgres;
  let sql: Sql;
  let api: ServiceProcess;
  let apiPort: number;
  let apiUrl: string;

  function startApi(): Promise<void> {
    const temporalAddress = process.env.TEST_TEMPORAL_ADDRESS ?? '';
    api = new ServiceProcess('api', 'api/main.ts', {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_URL: postgres.url,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_TASK_QUEUE: `test-usage-failures-${randomUUID()}`,
      PGAPPNAME: API_APP,
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      STRIPE_WEBHOOK_SECRET: 'whsec_test_usage_failures_0123456789',
      BILLING_API_KEYS: API_KEY,
    });
    return api.waitForOutput(/api listening/, 60_000);
  }

  beforeAll(async () => {
    if (!process.env.TEST_TEMPORAL_ADDRESS) {
      throw new Error('the test services are not running: run the tests with `npm test`');
    }
    dataRoot = mkdtempSync(path.join(os.tmpdir(), 'credits-billing-usage-failures-'));
    postgres = await RestartablePostgres.create({
      dataDir: path.join(dataRoot, 'pg'),
      port: await freePort(),
      database: 'usage_failures',
      prepare: migrateForService,
    });
    sql = createSql(postgres.url, { max: 4 });
    apiPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    await startApi();
  }, 240_000);

  // A test that failed with the process killed leaves the next one a running API.
  beforeEach(async () => {
    if (!api.running) await startApi();
  });

  afterAll(async () => {
    await api?.stop();
    await sql?.end({ timeout: 5 });
    await postgres?.stop();
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  const call = (method: string, route: string, body?: unknown) =>
    callApi(apiUrl, API_KEY, method, route, body);

  const sendUsage = (events: unknown[]) => call('POST', '/v1/usage', { events });

  async function fundedAccounts(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = `acct_${randomUUID()}`;
      await createAccount(sql, { id, email: `${id}@customers.test` });
      await grantDirectly(sql, id, { key: 'fund', amount: FUNDS });
      ids.push(id);
    }
    return ids;
  }

  /** `perAccount` new events (one image each) for every account, interleaved. */
  function batch(accounts: readonly string[], perAccount: number) {
    return Array.from({ length: perAccount * accounts.length }, (_, i) => ({
      id: `evt-${randomUUID()}`,
      accountId: accounts[i % accounts.length] as string,
      feature: FEATURE,
      quantity: 1,
    }));
  }

  /** Holds the lock of an account's balance row until `release`. */
  async function holdLock(accountId: string) {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = sql
      .begin(async (tx) => {
        await tx`SELECT 1 FROM credit_balances WHERE account_id = ${accountId} FOR UPDATE`;
        locked();
        await released;
      })
      // The server may go away under this transaction too.
      .catch(() => {});
    await isLocked;
    return {
      async release() {
        release();
        await holding;
      },
    };
  }

  const apiWaitingForLock = async () => {
    const [row] = await sql<{ waiting: number }[]>`
      SELECT count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name = ${API_APP}`;
    return (row?.waiting ?? 0) > 0;
  };

  /** What the database holds for these accounts: events, usage ledger rows, balances. */
  async function stored(accounts: readonly string[]) {
    const [row] = await sql<{ events: number; usage_rows: number; burned: string; balance: string }[]>`
      SELECT (SELECT count(*)::int FROM usage_events WHERE account_id = ANY (${accounts as string[]}::text[])) AS events,
             (SELECT count(*)::int FROM credit_ledger
              WHERE account_id = ANY (${accounts as string[]}::text[]) AND kind = 'usage') AS usage_rows,
             (SELECT COALESCE(SUM(credits), 0)::text FROM usage_events
              WHERE account_id = ANY (${accounts as string[]}::text[])) AS burned,
             (SELECT SUM(balance)::text FROM credit_balances
              WHERE account_id = ANY (${accounts as string[]}::text[])) AS balance`;
    return {
      events: row?.events ?? 0,
      usageRows: row?.usage_rows ?? 0,
      burned: Number(row?.burned),
      balance: Number(row?.balance),
    };
  }

  async function expectBooksAgree(accounts: readonly string[]) {
    const drift = await findBalanceDrift(sql);
    expect(drift.filter((d) => accounts.includes(d.accountId))).toEqual([]);
    expect(await findOrphanRows(sql)).toEqual({ ledgerRows: 0, allocations: 0, usageRows: 0 });
  }

  it('when PostgreSQL shuts down immediately during a usage request, then it answers 503, nothing of it is applied, and the retry counts every event once', async () => {
    const accounts = await fundedAccounts(3);
    const events = batch(accounts, 100);
    const lock = await holdLock(accounts[1] as string);
    const pending = sendUsage(events);
    await waitUntil(apiWaitingForLock, {
      what: 'the usage transaction waiting for the lock',
      timeoutMs: 30_000,
    });

    await postgres.stopImmediately();
    await lock.release();
    expect(await pending).toMatchObject({ status: 503, body: { error: { code: 'database_unavailable' } } });
    // While it is down, a new request is answered 503 at once.
    const startedAt = Date.now();
    expect(await sendUsage(batch(accounts, 1))).toMatchObject({
      status: 503,
      body: { error: { code: 'database_unavailable' } },
    });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    api.assertRunning();

    await postgres.start();
    await waitUntil(async () => (await call('GET', `/v1/accounts/${accounts[0]}`)).status === 200, {
      what: 'the API answering again',
      timeoutMs: 30_000,
    });
    expect(await stored(accounts)).toEqual({ events: 0, usageRows: 0, burned: 0, balance: 3 * FUNDS });

    const retried = await sendUsage(events);
    expect(retried).toMatchObject({ status: 200, body: { accepted: 300, credits: 300 * PRICE } });
    const again = await sendUsage(events);
    expect(again).toMatchObject({ status: 200, body: { accepted: 0, duplicates: 300, credits: 0 } });
    expect(await stored(accounts)).toEqual({
      events: 300,
      usageRows: 3,
      burned: 300 * PRICE,
      balance: 3 * FUNDS - 300 * PRICE,
    });
    await expectBooksAgree(accounts);
  }, 180_000);

  it('when the API process is SIGKILLed inside a usage transaction, then nothing of it is applied and the retry counts every event once', async () => {
    const accounts = await fundedAccounts(3);
    const events = batch(accounts, 100);
    const lock = await holdLock(accounts[2] as string);
    const pending = sendUsage(events).catch((error: unknown) => error);
    await waitUntil(apiWaitingForLock, {
      what: 'the usage transaction waiting for the lock',
      timeoutMs: 30_000,
    });

    await api.kill();
    // The connection is cut under the request (fetch's TypeError, from another realm here).
    expect(String(await pending)).toMatch(/TypeError/);
    await lock.release();
    // Its backend finds its client gone and rolls back.
    await waitUntil(
      async () =>
        (
          await sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${API_APP}`
        )[0]?.n === 0,
      { what: 'the killed process’s backends gone', timeoutMs: 30_000 },
    );
    expect(await stored(accounts)).toEqual({ events: 0, usageRows: 0, burned: 0, balance: 3 * FUNDS });

    await startApi();
    expect(await sendUsage(events)).toMatchObject({ status: 200, body: { accepted: 300 } });
    expect(await stored(accounts)).toMatchObject({ events: 300, burned: 300 * PRICE });
    await expectBooksAgree(accounts);
  }, 180_000);

  it('when the API process is SIGKILLed while clients stream usage, then sending every request again counts every event exactly once', async () => {
    const accounts = await fundedAccounts(5);
    const clients = 4;
    const requestsPerClient = 15;
    const work = Array.from({ length: clients }, () =>
      Array.from({ length: requestsPerClient }, () => batch(accounts, 10)),
    );
    const total = clients * requestsPerClient * 50;
    // Each client sends its requests one after the other until the process dies under it.
    const firstAnswers = new Map<unknown[], Answer>();
    const streams = work.map(async (requests) => {
      for (const events of requests) {
        try {
          firstAnswers.set(events, await sendUsage(events));
        } catch {
          return; // the process died: the rest are sent after it is back
        }
      }
    });
    await waitUntil(async () => (await stored(accounts)).events >= total / 4, {
      what: 'a quarter of the events recorded',
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    await api.kill();
    await Promise.all(streams);
    expect(firstAnswers.size).toBeLessThan(clients * requestsPerClient);

    await startApi();
    // Every request again, answered or not, as a client that cannot tell would.
    for (const requests of work) {
      for (const events of requests) {
        const answer = await sendUsage(events);
        expect(answer.status).toBe(200);
        const results = answer.body.results as Array<{
          status: string;
          credits: number;
          ledgerEntryId: number;
        }>;
        expect(
          results.every((r) => (r.status === 'accepted' || r.status === 'duplicate') && r.credits === PRICE),
        ).toBe(true);
        const first = firstAnswers.get(events);
        if (first) {
          // Answered before the kill: now a duplicate of each, with the same ledger row.
          expect(results.map((r) => r.status)).toEqual(Array(events.length).fill('duplicate'));
          expect(results.map((r) => r.ledgerEntryId)).toEqual(
            (first.body.results as Array<{ ledgerEntryId: number }>).map((r) => r.ledgerEntryId),
          );
        }
      }
    }
    expect(await stored(accounts)).toMatchObject({
      events: total,
      burned: total * PRICE,
      balance: accounts.length * FUNDS - total * PRICE,
    });
    await expectBooksAgree(accounts);
  }, 240_000);
});
