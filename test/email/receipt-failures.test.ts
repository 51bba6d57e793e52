import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPackCatalog, syncPackCatalog } from '../../db/catalog/packs';
import { createSql } from '../../db/client';
import { migrate } from '../../db/migrate';
import { freePort, startPostgres, stopProcess, type PostgresService } from '../../scripts/local-services';
import { statusQuery } from '../../workflows/purchases/contract';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { checkedBalance } from '../support/billing';
import { balanceOf, ledgerRowsFor, outboxRowsFor } from '../support/db';
import { TEST_PAYLOAD_KEYS } from '../support/payload-keys';
import { startHarness, type Harness } from '../support/harness';
import { startWorkerMailingTo, type MailingWorker } from '../support/mailing-worker';
import { scriptedSmtp, type ScriptedSmtp } from '../support/scripted-smtp';
import { logOutputOf } from '../support/test-log';
import { sleep, waitUntil } from '../support/wait';

describe('when the SMTP server fails', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when SMTP is down, then credits are granted at once and the receipt follows when it is back', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    const event = stripeEvent('checkout.session.completed', session);
    await h.smtp.down();
    try {
      await h.deliver(event);
      await waitUntil(async () => (await balanceOf(h.sql, account.id)) === 100, {
        what: 'grant while SMTP is down',
      });
      await waitUntil(async () => ((await outboxRowsFor(h.sql, account.id))[0]?.attempts ?? 0) >= 2, {
        what: 'failed delivery attempts',
      });
      const [pending] = await outboxRowsFor(h.sql, account.id);
      expect(pending).toMatchObject({ status: 'pending', last_error: expect.stringMatching(/ECONNREFUSED/) });
      expect((await h.temporal.workflow.getHandle(event.id).query(statusQuery)).stage).toBe(
        'sending_receipt',
      );
    } finally {
      await h.smtp.up();
    }
    await h.smtp.waitForMail(account.email, 1, 60_000);
    expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
      stage: 'completed',
      receipt: 'sent',
    });
    expect(h.smtp.to(account.email)).toHaveLength(1);
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([
      expect.objectContaining({ status: 'sent', last_error: null }),
    ]);
  });

  it('when SMTP refuses the recipient permanently, then the failure is recorded at once and the credits stay', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'growth', amountTotal: 4500 });
    const event = stripeEvent('checkout.session.completed', session);
    h.smtp.refuseRecipients(550);
    try {
      await h.deliver(event);
      const result = await h.temporal.workflow.getHandle(event.id).result();
      expect(result).toMatchObject({ stage: 'completed_receipt_failed', receipt: 'failed', credits: 550 });
    } finally {
      h.smtp.refuseRecipients(null);
    }
    expect(await balanceOf(h.sql, account.id)).toBe(550);
    const [outbox] = await outboxRowsFor(h.sql, account.id);
    // One attempt: a 5xx answer is not retried.
    expect(outbox).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: expect.stringMatching(/550|SmtpPermanentError/),
    });
  });
});

describe('when the receipt deadline passes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ configOverrides: { RECEIPT_DEADLINE: '3s' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when SMTP stays down past the deadline, then the receipt is recorded as failed and the credits stay', async () => {
    const account = await h.newAccount();
    const event = stripeEvent(
      'checkout.session.completed',
      checkoutSession({ accountId: account.id, packId: 'starter' }),
    );
    await h.smtp.down();
    await h.deliver(event);
    const result = await h.temporal.workflow.getHandle(event.id).result();
    expect(result).toMatchObject({ stage: 'completed_receipt_failed', receipt: 'failed' });
    expect(await balanceOf(h.sql, account.id)).toBe(100);
    const [outbox] = await outboxRowsFor(h.sql, account.id);
    expect(outbox?.status).toBe('failed');
    expect(outbox?.attempts).toBeGreaterThanOrEqual(2);
  });
});

describe('when a worker is killed between the grant and the receipt', () => {
  let h: Harness;
  let child: ChildProcess | null = null;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    if (child) await stopProcess(child);
    await h?.close();
  });

  it('then a new worker sends the receipt and nothing is granted twice', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'scale', amountTotal: 9000 });
    const event = stripeEvent('checkout.session.completed', session);
    await h.smtp.down();
    // The real worker process, as production runs it.
    // One process (node with tsx as a loader), so SIGKILL kills the worker itself, not a launcher.
    child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        DATABASE_URL: h.config.databaseUrl,
        TEMPORAL_ADDRESS: h.config.temporal.address,
        TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue,
        // The key ring the harness's API encrypts the workflow's input with.
        TEMPORAL_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
        SMTP_URL: h.smtp.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    logOutputOf(child, 'worker');
    await h.deliver(event);
    await waitUntil(async () => (await ledgerRowsFor(h.sql, session.id as string)).length === 1, {
      what: 'grant by the first worker',
      timeoutMs: 60_000,
    });
    await waitUntil(async () => ((await outboxRowsFor(h.sql, account.id))[0]?.attempts ?? 0) >= 1, {
      what: 'a failed receipt attempt',
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child?.once('exit', resolve));
    child = null;
    expect(h.smtp.to(account.email)).toHaveLength(0);

    await h.smtp.up();
    await h.startWorker();
    await h.smtp.waitForMail(account.email, 1, 90_000);
    expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
      stage: 'completed',
      receipt: 'sent',
    });
    expect(await h.smtp.settledMail(account.email)).toHaveLength(1);
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await balanceOf(h.sql, account.id)).toBe(1200);
  }, 180_000);
});

describe('when PostgreSQL goes down and comes back', () => {
  let h: Harness;
  let postgres: PostgresService;
  let dataRoot: string;
  beforeAll(async () => {
    // Its own PostgreSQL: stopping the suite's shared one would break the other test files.
    dataRoot = mkdtempSync(path.join(os.tmpdir(), 'credits-billing-pg-outage-'));
    postgres = await startOutagePostgres();
    await migrate(postgres.url);
    const sql = createSql(postgres.url, { max: 1 });
    await syncPackCatalog(sql, loadPackCatalog());
    await sql.end();
    h = await startHarness({ configOverrides: { DATABASE_URL: postgres.url } });
  });
  afterAll(async () => {
    await h?.close();
    await postgres?.stop();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  let port = 0;
  async function startOutagePostgres() {
    port ||= await freePort();
    return startPostgres({ dataDir: path.join(dataRoot, 'pg'), port, database: 'outage', persistent: true });
  }

  it('then the webhook still acknowledges, and the purchase is granted once when the database is back', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    const event = stripeEvent('checkout.session.completed', session);
    await postgres.stop();

    // Durable before 2xx: the event is in Temporal even though the database is down.
    expect((await h.deliver(event)).body).toMatchObject({ status: 'started' });
    await sleep(3000);
    const handle = h.temporal.workflow.getHandle(event.id);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect((await handle.query(statusQuery)).stage).toBe('validating');

    postgres = await startOutagePostgres();
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 100 });
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await balanceOf(h.sql, account.id)).toBe(100);
    await h.smtp.waitForMail(account.email);
  }, 120_000);
});

describe('when the SMTP server defers receipts for now', () => {
  let h: Harness;
  let smtp: ScriptedSmtp;
  let worker: MailingWorker | null = null;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    smtp = await scriptedSmtp();
    worker = await startWorkerMailingTo(h, smtp.url);
  });
  afterAll(async () => {
    await worker?.stop();
    await smtp?.close();
    await h?.close();
  });

  it('when many distinct purchases for one account arrive at once and SMTP refuses every receipt for now twice, then all are granted, the balance is their sum and each receipt is accepted exactly once', async () => {
    const account = await h.newAccount();
    const refusals = new Map<string, number>();
    smtp.state.onMessage = (data) => {
      const reference = /^Message-ID:\s*(\S+)/im.exec(data)?.[1] ?? data;
      const seen = refusals.get(reference) ?? 0;
      if (seen < 2) {
        refusals.set(reference, seen + 1);
        return { reply: '451 4.3.0 try again later' };
      }
      return { reply: '250 queued' };
    };
    const sessions = Array.from({ length: 12 }, () =>
      checkoutSession({ accountId: account.id, packId: 'starter' }),
    );
    const events = sessions.map((session) => stripeEvent('checkout.session.completed', session));
    const answers = await Promise.all(events.map((event) => h.deliver(event)));
    expect(answers.map((answer) => answer.status)).toEqual(events.map(() => 200));
    const results = await Promise.all(
      events.map((event) => h.temporal.workflow.getHandle(event.id).result()),
    );
    for (const result of results) {
      expect(result).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    }
    for (const session of sessions) {
      expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
      expect(
        smtp.acceptedFor(account.email).filter((data) => data.includes(session.id as string)),
      ).toHaveLength(1);
    }
    expect(smtp.acceptedFor(account.email)).toHaveLength(12);
    // Every receipt was refused twice before it went through: none skipped the refusals.
    expect([...refusals.values()]).toEqual(sessions.map(() => 2));
    expect(smtp.receivedFor(account.email)).toHaveLength(36);
    expect(await checkedBalance(h, account.id)).toBe(1200);
    const outbox = await outboxRowsFor(h.sql, account.id);
    expect(outbox).toHaveLength(12);
    expect(outbox.every((row) => row.status === 'sent')).toBe(true);
    // Each receipt's balance line is one of the running balances, none repeated.
    const balances = smtp
      .acceptedFor(account.email)
      .map((data) => /New balance:\s+([\d,]+)/.exec(data)?.[1])
      .sort();
    expect(new Set(balances).size).toBe(12);
  }, 240_000);
});
