import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAccount } from '../../credits/accounts';
import { createSql, type Sql } from '../../db/client';
import { maintenanceScheduleId } from '../../workflows/maintenance/contract';
import { freePort } from '../../scripts/local-services';
import { checkoutSession, deliverEvent, stripeEvent } from '../../stripe/fixtures/index';
import { balanceOf, driftedAccounts, ledgerRowsFor, outboxRowsFor, purchaseRow } from '../support/db';
import { migrateForService, RestartablePostgres } from '../support/restartable-postgres';
import { callApi, ServiceProcess, type ApiAnswer } from '../support/service-process';
import { SmtpCatcher } from '../support/smtp-catcher';
import { sleep, waitUntil } from '../support/wait';
import { DEVELOPMENT_PAYLOAD_KEYS } from '../../config/env';
import { testDataConverter } from '../support/payload-keys';

/**
 * PostgreSQL going away under load. The worker and the API run as their own processes, as in
 * production, against a PostgreSQL of this file's own: first their backends are terminated in
 * the middle of transactions (pg_terminate_backend), then the server goes down with an immediate
 * shutdown and comes back. A driver error that escapes every promise would end a process; here
 * both must stay up, answer 503 `database_unavailable` while the database is unreachable, and
 * finish every purchase exactly once when it is back.
 *
 * To have transactions in flight at the moment their connection dies, the test holds the lock
 * of the accounts' balance rows: every grant (worker) and debit (API) then waits inside its
 * transaction, on its own connection, until the connection is cut.
 */

const WORKER_APP = 'credits-outage-worker';
const API_APP = 'credits-outage-api';
const PACK = { packId: 'starter', credits: 100 } as const;
const WEBHOOK_SECRET = 'whsec_test_outage_0123456789abcdef';
const API_KEY = 'test_outage_api_key_0123456789';

describe('when PostgreSQL connections die and the server restarts under load', () => {
  let dataRoot: string;
  let postgres: RestartablePostgres;
  let sql: Sql;
  let smtp: SmtpCatcher;
  let worker: ServiceProcess;
  let api: ServiceProcess;
  let apiUrl: string;
  let temporal: Client;
  let temporalConnection: Connection;
  const taskQueue = `test-outage-${randomUUID()}`;

  beforeAll(async () => {
    const temporalAddress = process.env.TEST_TEMPORAL_ADDRESS;
    if (!temporalAddress) throw new Error('the test services are not running: run the tests with `npm test`');
    dataRoot = mkdtempSync(path.join(os.tmpdir(), 'credits-billing-pg-restart-'));
    postgres = await RestartablePostgres.create({
      dataDir: path.join(dataRoot, 'pg'),
      port: await freePort(),
      database: 'outage',
      prepare: migrateForService,
    });
    sql = createSql(postgres.url, { max: 4 });
    smtp = await SmtpCatcher.start();
    temporalConnection = await Connection.connect({ address: temporalAddress });
    // The processes below run on the published development key ring (no TEMPORAL_PAYLOAD_KEYS).
    temporal = new Client({
      connection: temporalConnection,
      dataConverter: testDataConverter(DEVELOPMENT_PAYLOAD_KEYS),
    });

    const common = {
      NODE_ENV: 'test',
      DATABASE_URL: postgres.url,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_TASK_QUEUE: taskQueue,
      SMTP_URL: smtp.url,
    };
    const apiPort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    // PGAPPNAME names each process's connections, so the test can find and cut exactly those.
    worker = new ServiceProcess('worker', 'worker/main.ts', {
      ...common,
      LOG_LEVEL: 'info',
      PGAPPNAME: WORKER_APP,
      MAINTENANCE_INTERVAL: '1 hour',
    });
    api = new ServiceProcess('api', 'api/main.ts', {
      ...common,
      LOG_LEVEL: 'info',
      PGAPPNAME: API_APP,
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      BILLING_API_KEYS: API_KEY,
    });
    await Promise.all([
      worker.waitForOutput(/worker started/, 120_000),
      api.waitForOutput(/api listening/, 60_000),
    ]);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([worker?.stop(), api?.stop()]);
    await temporal?.schedule
      .getHandle(maintenanceScheduleId(taskQueue))
      .delete()
      .catch(() => {});
    await temporalConnection?.close();
    await smtp?.down();
    await sql?.end({ timeout: 5 });
    await postgres?.stop();
    if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
  });

  function assertServicesRunning() {
    worker.assertRunning();
    api.assertRunning();
  }

  /** A request to the API process; if it cannot be answered because the process died, says so. */
  async function reachApi<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      await sleep(500);
      api.assertRunning();
      throw error;
    }
  }

  function call(method: string, route: string, body?: unknown): Promise<ApiAnswer> {
    return reachApi(() => callApi(apiUrl, API_KEY, method, route, body));
  }

  function deliver(event: ReturnType<typeof stripeEvent>) {
    return reachApi(() => deliverEvent(`${apiUrl}/webhooks/stripe`, event, WEBHOOK_SECRET));
  }

  /** Accounts whose balance rows this test keeps locked until `release`. */
  async function lockedAccounts(count: number) {
    const accounts: string[] = [];
    for (let i = 0; i < count; i++) {
      const id = `acct_${randomUUID()}`;
      await createAccount(sql, { id, email: `${id}@customers.test` });
      accounts.push(id);
    }
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holding = sql
      .begin(async (tx) => {
        await tx`SELECT 1 FROM credit_balances WHERE account_id = ANY(${accounts}::text[]) FOR UPDATE`;
        locked();
        await released;
      })
      // The server may go away under this transaction too.
      .catch(() => {});
    await isLocked;
    return {
      accounts,
      async release() {
        release();
        await holding;
      },
    };
  }

  /** Backends of the service's processes waiting for a lock, by process. */
  async function waitingBackends(): Promise<{ worker: number; api: number }> {
    const rows = await sql<{ application_name: string; waiting: number }[]>`
      SELECT application_name, count(*)::int AS waiting FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock'
        AND application_name IN (${WORKER_APP}, ${API_APP})
      GROUP BY application_name`;
    const of = (name: string) => rows.find((row) => row.application_name === name)?.waiting ?? 0;
    return { worker: of(WORKER_APP), api: of(API_APP) };
  }

  /**
   * Purchases and debits of the accounts, all started and waiting inside their transactions
   * for the test's lock. Returns the purchases, the debits and the debits' pending answers.
   */
  async function startBlockedWork(accounts: string[]) {
    const purchases: { accountId: string; sessionId: string }[] = [];
    for (const accountId of accounts) {
      const session = checkoutSession({ accountId, packId: PACK.packId });
      const event = stripeEvent('checkout.session.completed', session);
      const delivered = await deliver(event);
      expect(delivered).toMatchObject({ status: 200, body: { status: 'started' } });
      purchases.push({ accountId, sessionId: session.id as string });
    }
    const debits = accounts.map((accountId) => ({ accountId, idempotencyKey: `outage-${randomUUID()}` }));
    const answers = debits.map(({ accountId, idempotencyKey }) =>
      call('POST', `/v1/accounts/${accountId}/debits`, { amount: 1, idempotencyKey, reason: 'outage test' }),
    );
    // Both processes have transactions in flight, each on a connection of its own.
    await waitUntil(
      async () => {
        assertServicesRunning();
        const waiting = await waitingBackends();
        return waiting.worker >= accounts.length && waiting.api >= accounts.length;
      },
      { what: 'grants and debits waiting for the lock', timeoutMs: 60_000 },
    );
    return { purchases, debits, answers };
  }

  function expectUnavailable(answers: PromiseSettledResult<{ status: number; body: unknown }>[]) {
    for (const answer of answers) {
      expect(answer).toMatchObject({
        status: 'fulfilled',
        value: { status: 503, body: { error: { code: 'database_unavailable' } } },
      });
    }
  }

  /** The purchase is granted once, its purchase row completed and its receipt sent. */
  async function expectPurchaseFinished(purchase: { accountId: string; sessionId: string }) {
    await waitUntil(
      async () => {
        assertServicesRunning();
        const [outbox] = await outboxRowsFor(sql, purchase.accountId);
        return (
          (await purchaseRow(sql, purchase.sessionId))?.status === 'completed' && outbox?.status === 'sent'
        );
      },
      { what: `purchase ${purchase.sessionId} completed and its receipt sent`, timeoutMs: 90_000 },
    );
    expect(await ledgerRowsFor(sql, purchase.sessionId)).toHaveLength(1);
    await smtp.waitForMail(`${purchase.accountId}@customers.test`, 1, 30_000);
  }

  /** Every purchase finishes, exactly once; then each debit, retried with its key, applies. */
  async function expectWorkFinished(work: Awaited<ReturnType<typeof startBlockedWork>>) {
    for (const purchase of work.purchases) await expectPurchaseFinished(purchase);
    for (const debit of work.debits) {
      const retried = await call('POST', `/v1/accounts/${debit.accountId}/debits`, {
        amount: 1,
        idempotencyKey: debit.idempotencyKey,
        reason: 'outage test',
      });
      expect(retried).toMatchObject({ status: 201, body: { balance: PACK.credits - 1 } });
      expect(await balanceOf(sql, debit.accountId)).toBe(PACK.credits - 1);
    }
    expect(
      await driftedAccounts(
        sql,
        work.purchases.map((p) => p.accountId),
      ),
    ).toEqual([]);
  }

  it('when the backends of in-flight transactions are terminated, then both processes stay up and finish the work', async () => {
    const lock = await lockedAccounts(6);
    const work = await startBlockedWork(lock.accounts);

    const [cut] = await sql<{ terminated: number }[]>`
      SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS terminated FROM pg_stat_activity
      WHERE datname = current_database() AND application_name IN (${WORKER_APP}, ${API_APP})`;
    expect(cut?.terminated).toBeGreaterThanOrEqual(2 * lock.accounts.length);

    const answers = await Promise.allSettled(work.answers);
    await sleep(1000);
    assertServicesRunning();
    // The debits whose connection died answer 503 with the stable code; nothing was applied.
    expectUnavailable(answers);

    await lock.release();
    await expectWorkFinished(work);
    assertServicesRunning();
  }, 180_000);

  it('when PostgreSQL shuts down immediately and restarts, then the API answers 503 while it is down, 2xx after, and the work finishes', async () => {
    const lock = await lockedAccounts(6);
    const work = await startBlockedWork(lock.accounts);
    const accountId = `acct_${randomUUID()}`;
    await createAccount(sql, { id: accountId, email: `${accountId}@customers.test` });

    await postgres.stopImmediately();
    await lock.release();
    const answers = await Promise.allSettled(work.answers);
    await sleep(1000);
    assertServicesRunning();
    expectUnavailable(answers);

    // While the database is down: reads answer 503 at once, the process itself is live, and a
    // webhook is still acknowledged (it only needs Temporal), its purchase waiting for the grant.
    const startedAt = Date.now();
    expect(await call('GET', `/v1/accounts/${accountId}`)).toMatchObject({
      status: 503,
      body: { error: { code: 'database_unavailable' } },
    });
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(503);
    const lateSession = checkoutSession({ accountId, packId: PACK.packId });
    const lateEvent = stripeEvent('checkout.session.completed', lateSession);
    expect(await deliver(lateEvent)).toMatchObject({
      status: 200,
      body: { status: 'started' },
    });
    await sleep(3000);
    assertServicesRunning();

    await postgres.start();
    // Back within a few seconds, and from then on every request is answered.
    await waitUntil(async () => (await call('GET', `/v1/accounts/${accountId}`)).status === 200, {
      what: 'the API answering again',
      timeoutMs: 15_000,
    });
    for (const id of lock.accounts) expect((await call('GET', `/v1/accounts/${id}`)).status).toBe(200);

    await expectWorkFinished(work);
    await expectPurchaseFinished({ accountId, sessionId: lateSession.id as string });
    expect(await balanceOf(sql, accountId)).toBe(PACK.credits);
    assertServicesRunning();
  }, 240_000);
});
