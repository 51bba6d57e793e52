import { MockActivityEnvironment } from '@temporalio/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createEmailActivities } from '../../activities/email/email';
import type { Mailer } from '../../email/mailer';
import { createSql, type Sql } from '../../db/client';
import { enqueueEmail } from '../../db/email/outbox';
import { statusQuery } from '../../workflows/purchases/contract';
import { PurchaseStatus } from '../../workflows/shared/search-attributes';
import { stopProcess } from '../../scripts/local-services';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { checkedBalance } from '../support/billing';
import { ledgerRowsFor, outboxRowsFor } from '../support/db';
import { startHarness, TEST_OUTBOX_AGES, type Harness } from '../support/harness';
import { startWorkerMailingTo, type MailingWorker } from '../support/mailing-worker';
import { TEST_PAYLOAD_KEYS } from '../support/payload-keys';
import { scriptedSmtp, type Answer, type ScriptedSmtp } from '../support/scripted-smtp';
import { silentLogger } from '../support/quiet-runtime';
import { logOutputOf } from '../support/test-log';
import { waitUntil } from '../support/wait';

/**
 * A valid purchase is validated, granted and its receipt tried inside one workflow task. These
 * tests put that task in the way of what goes wrong around it: an SMTP server that hangs or
 * answers late, a worker that dies inside the task, a reviewer approving while SMTP is slow, and
 * a try that fails while an earlier one is still on the wire.
 */

/** A deferred answer: the message is held until the test says how to answer it. */
function heldAnswer() {
  let answer: (reply: string) => void = () => {};
  const reply = new Promise<string>((resolve) => (answer = resolve));
  let arrived = false;
  return {
    take: async (): Promise<Answer> => {
      arrived = true;
      return { reply: await reply };
    },
    arrived: () => arrived,
    answer: (line: string) => answer(line),
  };
}

async function historyOf(h: Harness, workflowId: string) {
  return (await h.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

async function scheduledActivities(h: Harness, workflowId: string): Promise<string[]> {
  return (await historyOf(h, workflowId)).flatMap(
    (event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
  );
}

/** Whether some transaction waits for a row lock on the outbox (a second delivery queued behind). */
async function outboxLockWaiters(h: Harness): Promise<number> {
  const [row] = await h.sql<{ count: string }[]>`
    SELECT count(*) AS count FROM pg_stat_activity
    WHERE wait_event_type = 'Lock' AND query ILIKE '%FROM email_outbox%FOR UPDATE%'`;
  return Number(row?.count ?? 0);
}

async function purchaseFor(h: Harness, options: { amountTotal?: number } = {}) {
  const account = await h.newAccount();
  const session = checkoutSession({ accountId: account.id, packId: 'starter', ...options });
  const event = stripeEvent('checkout.session.completed', session);
  return { account, session, sessionId: session.id as string, event };
}

describe('the receipt tried in the granting workflow task, against a misbehaving SMTP server', () => {
  let h: Harness;
  let smtp: ScriptedSmtp;
  let worker: MailingWorker | null = null;

  beforeAll(async () => {
    // Long enough for a grant on a loaded machine, shorter than the receipt's first try.
    h = await startHarness({ worker: false, configOverrides: { REVIEW_APPLY_WAIT_MS: '10000' } });
    smtp = await scriptedSmtp();
    worker = await startWorkerMailingTo(h, smtp.url);
  });
  afterEach(async () => {
    smtp.state.silent = false;
    smtp.state.onMessage = () => ({ reply: '250 queued' });
    // A fresh worker: after SMTP trouble a worker skips the in-task try for a while, and each
    // test here starts from a worker that has seen none.
    await worker?.stop();
    worker = await startWorkerMailingTo(h, smtp.url);
  });
  afterAll(async () => {
    await worker?.stop();
    await smtp?.close();
    await h?.close();
  });

  it('when the SMTP server accepts connections and never answers, then the credits are granted, the receipt waits in its retried activity (no workflow task held), and it goes out once when SMTP answers again', async () => {
    const { account, sessionId, event } = await purchaseFor(h);
    smtp.state.silent = true;
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    await waitUntil(async () => (await ledgerRowsFor(h.sql, sessionId)).length === 1, {
      what: 'the grant while SMTP hangs',
    });
    const waiting = await waitUntil(
      async () => {
        const description = await handle.describe();
        const retried = (description.raw.pendingActivities ?? []).some(
          (activity) => activity.activityType?.name === 'sendReceipt' && (activity.attempt ?? 0) >= 2,
        );
        return retried && !description.raw.pendingWorkflowTask ? description : null;
      },
      { what: 'the receipt activity retried with no workflow task pending', timeoutMs: 90_000 },
    );
    expect(waiting.typedSearchAttributes.get(PurchaseStatus)).toBe('sending_receipt');
    expect(await handle.query(statusQuery)).toMatchObject({ stage: 'sending_receipt', receipt: 'pending' });

    smtp.state.silent = false;
    smtp.dropSilentConnections();
    expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    expect(smtp.acceptedFor(account.email)).toHaveLength(1);
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    expect(await checkedBalance(h, account.id)).toBe(100);
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([expect.objectContaining({ status: 'sent' })]);
  }, 150_000);

  it('when the first try times out while SMTP still holds its message and the receipt activity queues behind it, then the late acceptance is the only copy and the run completes', async () => {
    const { account, sessionId, event } = await purchaseFor(h);
    const held = heldAnswer();
    smtp.state.onMessage = () => held.take();
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    // The first try gave up (its send still on the wire, the outbox row locked), the regular
    // activity waits for that lock.
    await waitUntil(async () => held.arrived() && (await outboxLockWaiters(h)) > 0, {
      what: 'the receipt activity waiting behind the first try',
      timeoutMs: 60_000,
    });
    expect(await scheduledActivities(h, event.id)).toEqual(['sendReceipt']);
    expect((await handle.query(statusQuery)).stage).toBe('sending_receipt');

    held.answer('250 queued');
    expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    expect(smtp.receivedFor(account.email)).toHaveLength(1);
    expect(smtp.acceptedFor(account.email)).toHaveLength(1);
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([
      expect.objectContaining({ status: 'sent', attempts: 1 }),
    ]);
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
  }, 120_000);

  it('when the first try times out and SMTP then refuses its message for now, then the receipt activity waiting behind it sends it, once', async () => {
    const { account, event } = await purchaseFor(h);
    const held = heldAnswer();
    let first = true;
    smtp.state.onMessage = () => {
      if (!first) return { reply: '250 queued' };
      first = false;
      return held.take();
    };
    expect((await h.deliver(event)).status).toBe(200);
    await waitUntil(async () => held.arrived() && (await outboxLockWaiters(h)) > 0, {
      what: 'the receipt activity waiting behind the first try',
      timeoutMs: 60_000,
    });
    held.answer('451 4.3.0 try again later');
    expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
      stage: 'completed',
      receipt: 'sent',
    });
    expect(smtp.receivedFor(account.email)).toHaveLength(2);
    expect(smtp.acceptedFor(account.email)).toHaveLength(1);
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([
      expect.objectContaining({ status: 'sent', attempts: 2, last_error: null }),
    ]);
  }, 120_000);

  it('when a reviewer approves a held purchase while SMTP is slow to answer, then the desk reports the approval applied (the grant does not wait for the receipt)', async () => {
    const { account, sessionId, event } = await purchaseFor(h, { amountTotal: 850 });
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    await waitUntil(
      async () => (await handle.describe()).typedSearchAttributes.get(PurchaseStatus) === 'held_for_review',
      { what: 'the purchase held for review' },
    );
    const held = heldAnswer();
    smtp.state.onMessage = () => held.take();
    try {
      const approval = await h.api('POST', `/v1/reviews/${event.id}`, {
        decision: 'approve',
        note: 'paid by wire',
      });
      expect(approval).toMatchObject({ status: 200, body: { applied: true } });
      expect(approval.body.stage).not.toBe('held_for_review');
      expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    } finally {
      held.answer('250 queued');
    }
    expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    expect(smtp.acceptedFor(account.email)).toHaveLength(1);
  }, 120_000);
});

describe('when the worker dies inside the workflow task that granted', () => {
  let h: Harness;
  let smtp: ScriptedSmtp;
  let child: ChildProcess | null = null;
  let worker: MailingWorker | null = null;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    smtp = await scriptedSmtp();
  });
  afterEach(async () => {
    if (child) await stopProcess(child);
    child = null;
    await worker?.stop();
    worker = null;
    smtp.state.onMessage = () => ({ reply: '250 queued' });
  });
  afterAll(async () => {
    await smtp?.close();
    await h?.close();
  });

  /**
   * The worker process as production runs it; SIGKILL ends the worker itself, not a launcher. What
   * it logs goes to the test file's log.
   */
  function spawnWorker(): ChildProcess {
    const worker = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        DATABASE_URL: h.config.databaseUrl,
        TEMPORAL_ADDRESS: h.config.temporal.address,
        TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue,
        TEMPORAL_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
        SMTP_URL: smtp.url,
        EMAIL_FROM: 'Credits <billing@credits.test>',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return logOutputOf(worker, 'worker');
  }

  function killChild(): void {
    child?.kill('SIGKILL');
  }

  async function childGone(): Promise<void> {
    const dying = child;
    if (dying && dying.exitCode === null && dying.signalCode === null) {
      await new Promise((resolve) => dying.once('exit', resolve));
    }
    child = null;
  }

  it('when it dies while its receipt try is still unanswered, then a new worker finds the grant its own, sends the receipt once and the run completes', async () => {
    const { account, sessionId, event } = await purchaseFor(h);
    let killed = false;
    smtp.state.onMessage = () => {
      if (killed) return { reply: '250 queued' };
      killed = true;
      killChild();
      return { reply: null };
    };
    child = spawnWorker();
    expect((await h.deliver(event)).status).toBe(200);
    await waitUntil(() => killed, { what: 'the first worker trying the receipt', timeoutMs: 120_000 });
    await childGone();
    const [row] = await ledgerRowsFor(h.sql, sessionId);
    expect(row).toBeDefined();
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([expect.objectContaining({ status: 'pending' })]);

    worker = await startWorkerMailingTo(h, smtp.url);
    const result = await h.temporal.workflow.getHandle(event.id).result();
    expect(result).toMatchObject({
      stage: 'completed',
      receipt: 'sent',
      credits: 100,
      ledgerEntryId: Number(row?.id),
    });
    expect(smtp.acceptedFor(account.email)).toHaveLength(1);
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    expect(await checkedBalance(h, account.id)).toBe(100);
    // The dead worker's task timed out, and the one that followed did it all again.
    const history = await historyOf(h, event.id);
    expect(history.some((e) => e.workflowTaskTimedOutEventAttributes)).toBe(true);
    expect(await scheduledActivities(h, event.id)).toEqual([]);
  }, 240_000);

  it('when it dies right after SMTP accepted the receipt (the outbox row not yet marked sent), then the run completes and any second copy carries the same Message-ID', async () => {
    const { account, sessionId, event } = await purchaseFor(h);
    let killed = false;
    smtp.state.onMessage = () => {
      if (killed) return { reply: '250 queued' };
      killed = true;
      return { reply: '250 queued', after: killChild };
    };
    child = spawnWorker();
    expect((await h.deliver(event)).status).toBe(200);
    await waitUntil(() => killed, { what: 'the first worker sending the receipt', timeoutMs: 120_000 });
    await childGone();

    worker = await startWorkerMailingTo(h, smtp.url);
    expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
      stage: 'completed',
      receipt: 'sent',
    });
    const copies = smtp.acceptedFor(account.email);
    expect(copies.length).toBeGreaterThanOrEqual(1);
    expect(copies.length).toBeLessThanOrEqual(2);
    const messageIds = copies.map((data) => /^Message-ID:\s*(<[^>]+>)/im.exec(data)?.[1]);
    expect(messageIds[0]).toMatch(/^<outbox-\d+@credits\.test>$/);
    expect(new Set(messageIds).size).toBe(1);
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    expect(await checkedBalance(h, account.id)).toBe(100);
  }, 240_000);
});

describe('when every workflow task slot is taken by purchases whose receipt try waits on a hung SMTP server', () => {
  let h: Harness;
  let smtp: ScriptedSmtp;
  let worker: MailingWorker | null = null;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    smtp = await scriptedSmtp();
    smtp.state.silent = true;
    // Two slots stand for the default 40 taken by 40 such purchases at once.
    worker = await startWorkerMailingTo(h, smtp.url, { maxConcurrentWorkflowTaskExecutions: 2 });
  });
  afterAll(async () => {
    await worker?.stop();
    await smtp?.close();
    await h?.close();
  });

  it('then the first tries give up, the next purchases skip the try without waiting on SMTP, and every receipt waits in its retried activity', async () => {
    const stageOf = (eventId: string) =>
      h.temporal.workflow
        .getHandle(eventId)
        .query(statusQuery)
        .then((status) => status.stage);
    /** Why each purchase's try in its workflow task failed (the local activity's failure type). */
    const tryFailures = async (eventId: string) =>
      (await historyOf(h, eventId)).flatMap((event) => {
        const failure = event.markerRecordedEventAttributes?.failure;
        return failure
          ? [failure.cause?.applicationFailureInfo?.type ?? failure.applicationFailureInfo?.type]
          : [];
      });

    const first = await Promise.all([purchaseFor(h), purchaseFor(h)]);
    for (const { event } of first) expect((await h.deliver(event)).status).toBe(200);
    await waitUntil(
      async () =>
        (await Promise.all(first.map(({ event }) => stageOf(event.id)))).every(
          (stage) => stage === 'sending_receipt',
        ),
      { what: 'the first receipts handed to their retried activity', timeoutMs: 60_000 },
    );
    // Each gave up after waiting, or at once when the other had just stalled.
    const firstFailures = (await Promise.all(first.map(({ event }) => tryFailures(event.id)))).flat();
    expect(firstFailures).toHaveLength(2);
    expect(firstFailures).toContain('SmtpTryStalled');

    const next = await Promise.all([purchaseFor(h), purchaseFor(h), purchaseFor(h)]);
    for (const { event } of next) expect((await h.deliver(event)).status).toBe(200);
    await waitUntil(
      async () =>
        (await Promise.all(next.map(({ event }) => stageOf(event.id)))).every(
          (stage) => stage === 'sending_receipt',
        ),
      { what: 'the next receipts handed over', timeoutMs: 60_000 },
    );
    // Granted, and their tries never went to the hung server.
    for (const { event, sessionId } of next) {
      expect(await tryFailures(event.id)).toEqual(['SmtpTryDeferred']);
      expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    }
  }, 120_000);
});

describe('a receipt tried inside its workflow task', () => {
  let sql: Sql;
  beforeAll(() => {
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 5 });
  });
  afterAll(async () => {
    await sql?.end();
  });

  it('when a slow send that began before SMTP failed succeeds after the failure, then the next tries still give up at once', async () => {
    const prefix = `late-receipt-${randomUUID()}`;
    const keys = ['slow', 'failing', 'next'].map((name) => `${prefix}:${name}`);
    for (const key of keys) {
      await enqueueEmail(sql, {
        key,
        accountId: null,
        to: 'someone@customers.test',
        subject: key,
        text: key,
      });
    }
    let releaseSlow: () => void = () => {};
    let slowStarted: () => void = () => {};
    const slowIsSending = new Promise<void>((resolve) => (slowStarted = resolve));
    const handed: string[] = [];
    const mailer: Mailer = {
      async send(message) {
        handed.push(message.subject);
        if (message.subject === keys[0]) {
          slowStarted();
          await new Promise<void>((resolve) => (releaseSlow = resolve));
        }
        if (message.subject === keys[1]) throw new Error('connect ECONNREFUSED 127.0.0.1:25');
        return { messageId: message.messageId };
      },
      close() {},
    };
    const activities = createEmailActivities({
      sql,
      mailer,
      invoicePayments: null,
      workflows: { isRunning: () => Promise.resolve(false) },
      config: { stripe: { livemode: false }, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    });
    const env = new MockActivityEnvironment({ isLocal: true }, { logger: silentLogger });
    const tryInTask = (receiptKey: string) => env.run(activities.sendReceipt, { receiptKey });
    try {
      const slow = tryInTask(keys[0] as string);
      await slowIsSending;
      await expect(tryInTask(keys[1] as string)).rejects.toMatchObject({
        message: expect.stringContaining('ECONNREFUSED'),
      });
      releaseSlow();
      expect(await slow).toEqual({ status: 'sent' });

      await expect(tryInTask(keys[2] as string)).rejects.toMatchObject({ code: 'smtp_try_deferred' });
      expect(handed).toEqual([keys[0], keys[1]]);
    } finally {
      releaseSlow();
      await sql`DELETE FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
    }
  });
});
