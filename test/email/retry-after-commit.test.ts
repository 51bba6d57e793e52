import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { createActivities, type Activities } from '../../activities/index';
import { createEmailActivities } from '../../activities/email/email';
import { createPurchaseActivities } from '../../activities/purchases/purchase';
import { createMailer, type Mailer } from '../../email/mailer';
import { enqueueEmail } from '../../db/email/outbox';
import type { CheckedPurchase, PurchaseValidation } from '../../workflows/purchases/contract';
import { summarizeCheckoutSession } from '../../stripe/objects';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { temporalDataConverter } from '../../config/payload-codec';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { temporalWorkflowDirectory } from '../../worker/maintenance-schedule';
import {
  checkedBalance,
  deliverAndSettle,
  grantedPurchase,
  newSubscription,
  runMaintenance,
} from '../support/billing';
import { ledgerRowsFor, outboxRowsFor } from '../support/db';
import { startHarness, TEST_OUTBOX_AGES, type Harness } from '../support/harness';
import { loggedActivityEnvironment, silentLogger } from '../support/quiet-runtime';
import { sleep, waitUntil } from '../support/wait';

/**
 * A money activity whose work committed but whose completion never reached Temporal (the
 * worker died, Temporal restarted) is retried. The retry must find its own work and answer as
 * the first attempt did, so the workflow goes on and the receipt is sent.
 */
describe('a retry after the commit', () => {
  let h: Harness;
  let worker: { instance: Worker; running: Promise<void>; connection: NativeConnection } | null = null;
  /** Activities whose next call commits, then fails as if its completion had been lost. */
  const losing = new Set<keyof Activities>();
  const firstAnswers: Array<{ activity: string; answer: unknown }> = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    const connection = await NativeConnection.connect({
      address: process.env.TEST_TEMPORAL_ADDRESS as string,
    });
    const mailer = createMailer({ smtpUrl: h.smtp.url, from: 'Credits <billing@credits.test>' });
    const real = createActivities({
      sql: h.sql,
      mailer,
      invoicePayments: null,
      workflows: temporalWorkflowDirectory(h.temporal),
      // Younger than other test files' sweep age: only this file sweeps the rows it backdates.
      config: {
        stripe: h.config.stripe,
        emailDomain: 'credits.test',
        outbox: { ...TEST_OUTBOX_AGES, sweepAfterMs: TEST_OUTBOX_AGES.sweepAfterMs / 2 },
      },
    });
    const activities = Object.fromEntries(
      Object.entries(real).map(([name, run]) => [
        name,
        async (...args: unknown[]) => {
          const answer = await (run as (...a: unknown[]) => Promise<unknown>)(...args);
          if (losing.delete(name as keyof Activities)) {
            firstAnswers.push({ activity: name, answer });
            throw new Error(`${name} committed, but its completion was lost`);
          }
          return answer;
        },
      ]),
    );
    const instance = await Worker.create({
      connection,
      namespace: h.config.temporal.namespace,
      taskQueue: h.config.temporal.taskQueue,
      workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
      dataConverter: temporalDataConverter(h.config.temporalPayloads),
      activities,
      interceptors: { activity: activityInterceptors },
    });
    worker = { instance, running: instance.run(), connection };
  });
  afterAll(async () => {
    if (worker) {
      worker.instance.shutdown();
      await worker.running;
      await worker.connection.close();
    }
    await h?.close();
  });

  it('when a purchase grant commits and its completion is lost, then the retry answers the same and the receipt is sent once', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    losing.add('validateAndGrantPurchase');
    const [result] = await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
    expect(result).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    const first = (
      firstAnswers.find((entry) => entry.activity === 'validateAndGrantPurchase')?.answer as
        CheckedPurchase | undefined
    )?.granted;
    expect(first).toMatchObject({ applied: true, receiptKey: `receipt:${session.id as string}` });
    expect(result?.ledgerEntryId).toBe((first as { ledgerEntryId: number }).ledgerEntryId);
    await h.smtp.waitForMail(account.email);
    expect(h.smtp.to(account.email)).toHaveLength(1);
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await checkedBalance(h, account.id)).toBe(100);

    // Another event for the same session is told it was granted elsewhere, and sends nothing.
    const [other] = await deliverAndSettle(h, [
      stripeEvent('checkout.session.async_payment_succeeded', session),
    ]);
    expect(other).toMatchObject({ stage: 'already_granted' });
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([expect.objectContaining({ status: 'sent' })]);
  });

  it('when the receipt tried in the granting workflow task goes out and its completion is lost, then the regular receipt activity finds it sent and nothing is sent twice', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    const event = stripeEvent('checkout.session.completed', session);
    losing.add('sendReceipt');
    const [result] = await deliverAndSettle(h, [event]);
    expect(losing.has('sendReceipt')).toBe(false);
    expect(result).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    await h.smtp.waitForMail(account.email);
    // The lost first answer sent it; the retry found it sent and sent nothing.
    expect(h.smtp.to(account.email)).toHaveLength(1);
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([
      expect.objectContaining({ status: 'sent', attempts: 1 }),
    ]);
    const history = await h.temporal.workflow.getHandle(event.id).fetchHistory();
    const scheduled = (history.events ?? []).flatMap(
      (event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    expect(scheduled).toEqual(['sendReceipt']);
  });

  it('when a period grant commits and its completion is lost, then the retry answers the same and the receipt is sent', async () => {
    const fixture = await newSubscription(h, 'pro');
    losing.add('grantInvoice');
    const results = await deliverAndSettle(h, fixture.startEvents());
    const invoiceRun = results.find((result) => result.invoiceId === fixture.firstInvoice.id);
    expect(invoiceRun).toMatchObject({ stage: 'completed', email: 'sent', credits: 5000 });
    await h.smtp.waitForMail(fixture.account.email);
    expect(h.smtp.to(fixture.account.email)).toHaveLength(1);
    expect(await checkedBalance(h, fixture.account.id)).toBe(5000);
  });

  it('when a refund commits and its completion is lost, then the retry reports the refund applied, not a duplicate', async () => {
    const purchase = await grantedPurchase(h, 'growth');
    losing.add('applyRefund');
    const [result] = await deliverAndSettle(h, [purchase.refunded(purchase.terms.amount)]);
    const first = firstAnswers.find((entry) => entry.activity === 'applyRefund')?.answer;
    expect(first).toMatchObject({ outcome: 'applied', delta: -550 });
    expect(result).toMatchObject({ stage: 'applied', delta: -550, revokedCredits: 550 });
    expect(await checkedBalance(h, purchase.account.id)).toBe(0);
  });

  describe('the outbox sweep', () => {
    async function queue(accountId: string, key: string, workflowId: string) {
      await enqueueEmail(h.sql, {
        key,
        accountId,
        to: `${accountId}@customers.test`,
        subject: key,
        text: 'x',
        workflowId,
      });
      await h.sql`UPDATE email_outbox SET created_at = now() - interval '45 minutes' WHERE key = ${key}`;
    }

    it('when an email stays pending and its workflow is gone, then the sweep delivers it once; one whose workflow runs is left to it', async () => {
      const account = await h.newAccount();
      const orphan = `test:orphan:${account.id}`;
      await queue(account.id, orphan, `evt_gone_${account.id}`);
      // A purchase held for review keeps its workflow running.
      const held = checkoutSession({ accountId: account.id, packId: 'starter', amountTotal: 1 });
      const heldEvent = stripeEvent('checkout.session.completed', held);
      await h.deliver(heldEvent);
      const owned = `test:owned:${account.id}`;
      await queue(account.id, owned, heldEvent.id);
      await waitUntil(
        async () => (await h.temporal.workflow.getHandle(heldEvent.id).describe()).status.name === 'RUNNING',
      );

      await Promise.all([runMaintenance(h), runMaintenance(h)]);
      await h.smtp.waitForMail(account.email);
      expect(h.smtp.to(account.email).map((mail) => mail.subject)).toEqual([orphan]);
      const rows = await outboxRowsFor(h.sql, account.id);
      expect(rows.find((row) => row.key === orphan)).toMatchObject({ status: 'sent', attempts: 1 });
      expect(rows.find((row) => row.key === owned)).toMatchObject({ status: 'pending', attempts: 0 });
      await h.temporal.workflow.getHandle(heldEvent.id).terminate('test over');
    });

    it('when the SMTP server refuses a swept email permanently, then it is recorded as failed', async () => {
      const account = await h.newAccount();
      const key = `test:refused:${account.id}`;
      await queue(account.id, key, `evt_gone_${account.id}`);
      h.smtp.refuseRecipients(550);
      try {
        await runMaintenance(h);
      } finally {
        h.smtp.refuseRecipients(null);
      }
      const [row] = await outboxRowsFor(h.sql, account.id);
      expect(row).toMatchObject({ status: 'failed', last_error: expect.stringMatching(/outbox sweep/) });
    });
  });

  describe('a grant answered again: the same workflow, another of its events, a lost answer, a cut connection', () => {
    it('when a purchase is validated and granted again by the same workflow (its workflow task lost after the commit), then it is granted once and the receipt is still sent', async () => {
      const purchase = createPurchaseActivities({
        sql: h.sql,
        mailer: { send: () => Promise.reject(new Error('unused')), close: () => {} },
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(true) },
        config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
      });
      const env = loggedActivityEnvironment();
      const account = await h.newAccount();
      const session = summarizeCheckoutSession(checkoutSession({ accountId: account.id, packId: 'starter' }));
      const workflowId = `evt_regranted_${account.id}`;
      const runOnce = async () => {
        const validation: PurchaseValidation = await env.run(purchase.validatePurchase, {
          session,
          workflowId,
        });
        if (validation.outcome !== 'valid') return validation;
        return env.run(purchase.grantPurchase, validation.grant);
      };
      const first = await runOnce();
      const again = await runOnce();
      expect(first).toMatchObject({ applied: true, receiptKey: `receipt:${session.id}` });
      expect(again).toEqual(first);
      expect(await ledgerRowsFor(h.sql, session.id)).toHaveLength(1);
      // Another workflow (another event for the session) is told it was granted.
      const other = await env.run(purchase.validatePurchase, { session, workflowId: `${workflowId}_other` });
      expect(other).toMatchObject({ outcome: 'already_granted' });
    });

    it('when validateAndGrantPurchase runs again with the same input (its first answer lost), then it answers exactly as the first time, even after the receipt went out and the balance moved on', async () => {
      const purchase = createPurchaseActivities({
        sql: h.sql,
        mailer: { send: () => Promise.reject(new Error('unused')), close: () => {} },
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(true) },
        config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
      });
      const env = new MockActivityEnvironment(undefined, { logger: silentLogger });
      const { account, session } = await grantedPurchase(h, 'starter', { deliver: false });
      const summary = summarizeCheckoutSession(session);
      const workflowId = `evt_single_task_${account.id}`;
      const run = (id = workflowId): Promise<CheckedPurchase> =>
        env.run(purchase.validateAndGrantPurchase, { session: summary, workflowId: id });

      const first = await run();
      expect(first.validation.outcome).toBe('valid');
      expect(first.granted).toMatchObject({ applied: true, receiptKey: `receipt:${summary.id}` });
      expect(await run()).toEqual(first);

      // Its receipt sent and another purchase on the account since: still the same answer.
      await h.sql`UPDATE email_outbox SET status = 'sent', sent_at = now() WHERE key = ${`receipt:${summary.id}`}`;
      const otherSummary = summarizeCheckoutSession(
        checkoutSession({ accountId: account.id, packId: 'starter' }),
      );
      await env.run(purchase.validateAndGrantPurchase, {
        session: otherSummary,
        workflowId: `${workflowId}_b`,
      });
      expect(await run()).toEqual(first);
      expect(await ledgerRowsFor(h.sql, summary.id)).toHaveLength(1);
      expect(await checkedBalance(h, account.id)).toBe(200);

      // Another event's workflow for the same session is told it was granted, and by which entry.
      expect(await run(`${workflowId}_twin`)).toEqual({
        validation: { outcome: 'already_granted', ledgerEntryId: first.granted?.ledgerEntryId },
        granted: null,
      });
    });

    it('when the pack is repriced between a grant that committed and its retry, then the retry still answers as the first (granted, the receipt its own to send)', async () => {
      const purchase = createPurchaseActivities({
        sql: h.sql,
        mailer: { send: () => Promise.reject(new Error('unused')), close: () => {} },
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(true) },
        config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
      });
      const env = new MockActivityEnvironment(undefined, { logger: silentLogger });
      // A pack of this test's own, so repricing it disturbs no other test.
      const packId = `single-task-${randomUUID().slice(0, 8)}`;
      await h.sql`INSERT INTO credit_packs (id, name, credits, price_cents, currency) VALUES (${packId}, 'Repriced pack', 40, 400, 'usd')`;
      const account = await h.newAccount();
      const session = summarizeCheckoutSession(
        checkoutSession({ accountId: account.id, packId, amountTotal: 400 }),
      );
      const input = { session, workflowId: `evt_single_task_${account.id}` };
      const first: CheckedPurchase = await env.run(purchase.validateAndGrantPurchase, input);
      expect(first.granted).toMatchObject({ applied: true, receiptKey: `receipt:${session.id}` });
      // A deploy changes the catalog while the worker that granted is gone.
      await h.sql`UPDATE credit_packs SET price_cents = 500 WHERE id = ${packId}`;
      expect(await env.run(purchase.validateAndGrantPurchase, input)).toEqual(first);
      expect(await ledgerRowsFor(h.sql, session.id)).toHaveLength(1);
    });

    it('when the connection granting a purchase is terminated by PostgreSQL while it commits, then the retried grant commits once and the run completes with one ledger row and one receipt', async () => {
      const account = await h.newAccount();
      const session = checkoutSession({ accountId: account.id, packId: 'starter' });
      const sessionId = session.id as string;
      const tag = randomUUID().replace(/-/g, '').slice(0, 12);
      const sequence = `kill_once_${tag}`;
      const fn = `kill_at_commit_${tag}`;
      // A deferred trigger runs inside COMMIT: the first time the purchase row commits, the backend
      // doing it is terminated there (a sequence, not a row, counts: it survives the rollback).
      await h.sql.unsafe(`CREATE SEQUENCE ${sequence}`);
      await h.sql.unsafe(`
        CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.id = '${sessionId}' AND nextval('${sequence}') = 1 THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(5);
          END IF;
          RETURN NULL;
        END $$`);
      await h.sql.unsafe(`
        CREATE CONSTRAINT TRIGGER ${fn} AFTER INSERT ON purchases
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
      try {
        const event = stripeEvent('checkout.session.completed', session);
        expect((await h.deliver(event)).status).toBe(200);
        expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
          stage: 'completed',
          receipt: 'sent',
          credits: 100,
        });
        const [fired] = await h.sql.unsafe<{ last_value: string; is_called: boolean }[]>(
          `SELECT last_value, is_called FROM ${sequence}`,
        );
        expect(fired?.is_called).toBe(true);
        expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
        expect(await checkedBalance(h, account.id)).toBe(100);
        expect(await h.smtp.settledMail(account.email)).toHaveLength(1);
        expect(await outboxRowsFor(h.sql, account.id)).toEqual([expect.objectContaining({ status: 'sent' })]);
      } finally {
        await h.sql.unsafe(`DROP TRIGGER ${fn} ON purchases`);
        await h.sql.unsafe(`DROP FUNCTION ${fn}()`);
        await h.sql.unsafe(`DROP SEQUENCE ${sequence}`);
      }
    }, 120_000);
  });

  describe('the outbox sweep, many emails at once', () => {
    it('when more than a batch of stale emails belong to running workflows, then an older-than-sweep email of a closed workflow is still delivered', async () => {
      const account = await h.newAccount();
      const prefix = `hol-${randomUUID()}`;
      // 200 receipts still in their workflows' hands (a long SMTP outage), queued first...
      await h.sql`
        INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id, created_at)
        SELECT ${prefix} || ':running:' || n, ${account.id}, 'x@customers.test', 's', 'b',
               ${prefix} || '-running-' || n, now() - interval '50 minutes' + n * interval '1 millisecond'
        FROM generate_series(1, 200) AS n`;
      // ...then one whose workflow is gone: only the sweep can deliver it.
      const orphan = `${prefix}:orphan`;
      await h.sql`
        INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id, created_at)
        VALUES (${orphan}, ${account.id}, 'x@customers.test', 's', 'b', ${`${prefix}-gone`},
                now() - interval '45 minutes')`;
      const sent: string[] = [];
      const mailer: Mailer = {
        send(message) {
          sent.push(message.messageId);
          return Promise.resolve({ messageId: message.messageId });
        },
        close() {},
      };
      const activities = createEmailActivities({
        sql: h.sql,
        mailer,
        invoicePayments: null,
        workflows: { isRunning: (workflowId) => Promise.resolve(workflowId.includes('-running-')) },
        // Younger than the harness's sweep age: no other worker sweeps these rows.
        config: {
          stripe: { livemode: false },
          emailDomain: 'credits.test',
          outbox: { sweepAfterMs: 30 * 60_000, giveUpAfterMs: 24 * 3600_000 },
        },
      });
      try {
        // Every maintenance interval sweeps again; a few sweeps are more than enough.
        for (let sweep = 0; sweep < 3; sweep += 1) {
          await loggedActivityEnvironment().run(activities.sweepOutbox);
        }
        const [row] = await h.sql<
          { status: string }[]
        >`SELECT status FROM email_outbox WHERE key = ${orphan}`;
        expect(row?.status).toBe('sent');
      } finally {
        await h.sql`DELETE FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
      }
    });

    it('when two sweeps run at once over the same stale emails, then each email is delivered exactly once', async () => {
      const account = await h.newAccount();
      const prefix = `par-${randomUUID()}`;
      const count = 30;
      // Stale receipts whose workflows are gone: both sweeps see every one of them.
      await h.sql`
        INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id, created_at)
        SELECT ${prefix} || ':' || n, ${account.id}, 'x@customers.test', 's', 'b',
               ${prefix} || '-gone-' || n, now() - interval '50 minutes' + n * interval '1 millisecond'
        FROM generate_series(1, ${count}) AS n`;
      const sent: string[] = [];
      const mailer: Mailer = {
        async send(message) {
          sent.push(message.messageId);
          // A slow SMTP server, so the two sweeps overlap on the same rows.
          await sleep(20);
          return { messageId: message.messageId };
        },
        close() {},
      };
      const activities = createEmailActivities({
        sql: h.sql,
        mailer,
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(false) },
        config: {
          stripe: { livemode: false },
          emailDomain: 'credits.test',
          outbox: { sweepAfterMs: 30 * 60_000, giveUpAfterMs: 24 * 3600_000 },
        },
      });
      try {
        await Promise.all([
          loggedActivityEnvironment().run(activities.sweepOutbox),
          loggedActivityEnvironment().run(activities.sweepOutbox),
        ]);
        expect(sent).toHaveLength(count);
        expect(new Set(sent).size).toBe(count);
        const rows = await h.sql<{ status: string; attempts: number }[]>`
          SELECT status, attempts FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
        expect(rows).toHaveLength(count);
        expect(rows.every((row) => row.status === 'sent' && row.attempts === 1)).toBe(true);
      } finally {
        await h.sql`DELETE FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
      }
    });
  });
});
