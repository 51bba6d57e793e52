import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities/index';
import { createMailer } from '../../email/mailer';
import { enqueueEmail } from '../../db/email/outbox';
import type { CheckedPurchase } from '../../workflows/purchases/contract';
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
import { waitUntil } from '../support/wait';

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
});
