import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index';
import { createMailer } from '../../email/mailer';
import { routeStripeEvent, type RouteSettings } from '../../stripe/event-routes';
import { createSql, type Sql } from '../../db/client';
import { findTemporalTestServer } from '../../scripts/temporal-cli';
import { createAccount } from '../../credits/accounts';
import { holdCredits } from '../../credits/reservations';
import { SEARCH_ATTRIBUTES } from '../../workflows/shared/search-attributes';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { charge, checkoutSession, stripeEvent, type StripeEvent } from '../../stripe/fixtures/index';
import { testDataConverter } from '../support/payload-keys';
import { installQuietRuntime } from '../support/quiet-runtime';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { grantDirectly } from '../support/billing';
import { balanceOf, outboxRowsFor, purchaseRow } from '../support/db';
import { TEST_OUTBOX_AGES } from '../support/harness';
import { SmtpCatcher } from '../support/smtp-catcher';
import { randomUUID } from 'node:crypto';

/**
 * The waits measured in days — a purchase held for review, a receipt retried until its deadline,
 * a refund waiting for the purchase it takes back, a hold's TTL — run on Temporal's
 * time-skipping test server, with the real activities against the real database and SMTP.
 */
describe('waits of days, with time skipped', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let sql: Sql;
  let smtp: SmtpCatcher;
  const taskQueue = `long-waits-${randomUUID()}`;
  const settings: RouteSettings = { purchaseReviewTimeout: '7 days', receiptDeadline: '3 days' };
  // The service's payload codec, as on every other server.
  const dataConverter = testDataConverter();

  beforeAll(async () => {
    installQuietRuntime();
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: findTemporalTestServer() } },
      client: { dataConverter },
    });
    const KEYWORD = encodeSearchAttributeIndexedValueType('KEYWORD');
    if (KEYWORD === undefined) throw new Error('no Keyword search attribute type');
    // The workflows set these as they go, as on any namespace of the service.
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map(({ name }) => [name, KEYWORD])),
    });
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 5 });
    smtp = await SmtpCatcher.start();
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' });
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
      dataConverter,
      activities: createActivities({
        sql,
        mailer,
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(false) },
        config: { stripe: { livemode: false }, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
      }),
      interceptors: { activity: activityInterceptors },
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await running;
    await smtp?.down();
    await sql?.end();
    await env?.teardown();
  });

  /** Starts the workflow the webhook would start for this event, on the time-skipping server. */
  async function start(event: StripeEvent) {
    const route = routeStripeEvent(event, settings);
    if (route.action !== 'start') throw new Error(`${event.type} starts nothing`);
    return env.client.workflow.start(route.workflowType, {
      taskQueue,
      workflowId: event.id,
      args: route.args,
    });
  }

  async function newAccount() {
    const id = `acct_${randomUUID()}`;
    await createAccount(sql, { id, email: `${id}@customers.test` });
    return { id, email: `${id}@customers.test` };
  }

  it('when nobody reviews a held purchase for 7 days, then it closes as review_expired with nothing granted', async () => {
    const account = await newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter', amountTotal: 1 });
    const handle = await start(stripeEvent('checkout.session.completed', session));
    const result = await handle.result();
    expect(result).toMatchObject({ stage: 'review_expired' });
    expect(await purchaseRow(sql, session.id as string)).toMatchObject({ status: 'review_expired' });
    expect(await balanceOf(sql, account.id)).toBe(0);
  });

  it('when SMTP stays down past the receipt deadline, then the credits stay and the receipt is recorded as failed', async () => {
    const account = await newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    await smtp.down();
    try {
      const handle = await start(stripeEvent('checkout.session.completed', session));
      const result = await handle.result();
      expect(result).toMatchObject({ stage: 'completed_receipt_failed', receipt: 'failed', credits: 100 });
    } finally {
      await smtp.up();
    }
    expect(await balanceOf(sql, account.id)).toBe(100);
    expect(await outboxRowsFor(sql, account.id)).toEqual([
      expect.objectContaining({
        status: 'failed',
        last_error: expect.stringMatching(/ECONNREFUSED|timeout/i),
      }),
    ]);
  });

  it('when a refund names a payment nothing was sold with, then it waits 3 days for the purchase and closes without moving credits', async () => {
    const refund = stripeEvent(
      'charge.refunded',
      charge({ paymentIntentId: `pi_${randomUUID().replaceAll('-', '')}`, amountRefunded: 900 }),
    );
    const handle = await start(refund);
    expect(await handle.result()).toMatchObject({ stage: 'no_purchase', delta: null });
  });

  it('when a hold of one day is never captured, then its timer releases it a day later', async () => {
    const account = await newAccount();
    await grantDirectly(sql, account.id, { key: 'fund', amount: 30 });
    const { reservation } = await holdCredits(sql, {
      accountId: account.id,
      amount: 30,
      ttlSeconds: 24 * 3600,
      idempotencyKey: 'day-long',
    });
    // The server's clock, not the database's, decides when the timer fires: the hold's expiry
    // is set to "now" in the database so that the release, once the timer fires, is due.
    await sql`UPDATE credit_reservations SET expires_at = now() WHERE id = ${reservation.id}`;
    const handle = await env.client.workflow.start('reservationTimeoutWorkflow', {
      taskQueue,
      workflowId: `reservation:${reservation.id}`,
      args: [
        { accountId: account.id, reservationId: reservation.id, expiresAtMs: Date.now() + 24 * 3600_000 },
      ],
    });
    expect(await handle.result()).toEqual({ status: 'expired' });
    const [row] = await sql<
      { held: string }[]
    >`SELECT held FROM credit_balances WHERE account_id = ${account.id}`;
    expect(row?.held).toBe('0');
  });
});
