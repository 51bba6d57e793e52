import { NativeConnection, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { createActivities } from '../activities';
import { createMailer } from '../email/mailer';
import { temporalDataConverter } from '../config/payload-codec';
import { createAccount } from '../credits/accounts';
import { checkoutSession, stripeEvent } from '../stripe/fixtures/index';
import { activityInterceptors } from '../worker/billing-error-interceptor';
import { temporalWorkflowDirectory } from '../worker/maintenance-schedule';
import { checkedBalance } from './support/billing';
import { ledgerRowsFor, outboxRowsFor } from './support/db';
import { startHarness, TEST_OUTBOX_AGES, type Harness } from './support/harness';
import { scriptedSmtp, type ScriptedSmtp } from './support/scripted-smtp';

/** The service's activities on the harness's task queue, mailing through `smtpUrl`. */
async function startWorkerMailingTo(h: Harness, smtpUrl: string) {
  const connection = await NativeConnection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS as string });
  const mailer = createMailer({ smtpUrl, from: 'Credits <billing@credits.test>' });
  const instance = await Worker.create({
    connection,
    namespace: h.config.temporal.namespace,
    taskQueue: h.config.temporal.taskQueue,
    workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
    dataConverter: temporalDataConverter(h.config.temporalPayloads),
    activities: createActivities({
      sql: h.sql,
      mailer,
      invoicePayments: null,
      workflows: temporalWorkflowDirectory(h.temporal),
      config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    }),
    interceptors: { activity: activityInterceptors },
  });
  const running = instance.run();
  return {
    async stop() {
      instance.shutdown();
      await running;
      await connection.close();
      mailer.close();
    },
  };
}

describe('purchases through the single-task path with odd inputs and a refusing SMTP server', () => {
  let h: Harness;
  let smtp: ScriptedSmtp;
  let worker: Awaited<ReturnType<typeof startWorkerMailingTo>> | null = null;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    smtp = await scriptedSmtp();
    worker = await startWorkerMailingTo(h, smtp.url);
  });
  afterEach(async () => {
    smtp.state.onMessage = () => ({ reply: '250 queued' });
    await worker?.stop();
    worker = await startWorkerMailingTo(h, smtp.url);
  });
  afterAll(async () => {
    await worker?.stop();
    await smtp?.close();
    await h?.close();
  });

  it('when the account ID is 128 non-ASCII characters and the pack name mixes emoji, accents and right-to-left text, then the purchase completes with one grant and a receipt that carries both unchanged', async () => {
    // Characters in the Basic Multilingual Plane only, so JavaScript's and PostgreSQL's lengths agree.
    const stem = `acct_ünïcødé_жз_中文_${randomUUID()}_`;
    const accountId = (stem + 'ß'.repeat(128)).slice(0, 128);
    expect(accountId).toHaveLength(128);
    const email = `${'x'.repeat(50)}+receipt.${randomUUID().slice(0, 8)}@customers.test`;
    await createAccount(h.sql, { id: accountId, email });
    const packId = `odd-${randomUUID().slice(0, 8)}`;
    const packName = 'Crédits “Größe” 🚀✨ — رصيد إضافي — 👩🏽‍💻 naïve';
    await h.sql`INSERT INTO credit_packs (id, name, credits, price_cents, currency) VALUES (${packId}, ${packName}, 77, 700, 'usd')`;
    const session = checkoutSession({
      accountId,
      packId,
      amountTotal: 700,
      email: 'jénny.rösen@example.com',
      metadata: { note: '💥'.repeat(250) },
    });
    const sessionId = session.id as string;
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
      stage: 'completed',
      receipt: 'sent',
      credits: 77,
    });
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    expect(await checkedBalance(h, accountId)).toBe(77);
    const accepted = smtp.acceptedFor(email);
    expect(accepted).toHaveLength(1);
    const message = await simpleParser(accepted[0] as string);
    expect(message.text).toContain(packName);
    expect(message.text).toContain(accountId);
    expect(message.text).toContain('$7.00');
    expect(await outboxRowsFor(h.sql, accountId)).toEqual([expect.objectContaining({ status: 'sent' })]);
  }, 120_000);

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
      expect(smtp.acceptedFor(account.email)).toHaveLength(1);
      expect(await outboxRowsFor(h.sql, account.id)).toEqual([expect.objectContaining({ status: 'sent' })]);
    } finally {
      await h.sql.unsafe(`DROP TRIGGER ${fn} ON purchases`);
      await h.sql.unsafe(`DROP FUNCTION ${fn}()`);
      await h.sql.unsafe(`DROP SEQUENCE ${sequence}`);
    }
  }, 120_000);
});
