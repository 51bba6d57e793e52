import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Stripe from 'stripe';
import { createActivities } from '../../activities/index';
import type { BusinessMetrics } from '../../activities/business-metrics';
import { createMailer } from '../../email/mailer';
import type { TopupPaymentGateway } from '../../activities/topups/topup';
import { createAccount } from '../../credits/accounts';
import { createSql, type Sql } from '../../db/client';
import { createGrant } from '../../credits/grants';
import { debitCredits } from '../../credits/debits';
import {
  failAbandonedTopups,
  failTopup,
  findTopupSettings,
  grantTopup,
  recordTopupGrantOwed,
  saveTopupSettings,
} from '../../db/topups/topups';
import { SEARCH_ATTRIBUTES } from '../../workflows/shared/search-attributes';
import { waitUntil } from '../support/wait';
import { startEventWorkflow } from '../../stripe/event-intake';
import { routeStripeEvent } from '../../stripe/event-routes';
import type { PaymentIntentSummary } from '../../stripe/payment-intent';
import {
  TOPUP_ABANDONED_AFTER_DAYS,
  topupLateDeclineWorkflowId,
  topupLatePaymentWorkflowId,
  topupStatusQuery,
  topupWorkflowId,
  type TopupWorkflowResult,
} from '../../workflows/topups/contract';
import { findTemporalTestServer } from '../../scripts/temporal-cli';
import { stripeEvent } from '../../stripe/fixtures/index';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { TEST_OUTBOX_AGES } from '../support/harness';
import { testDataConverter } from '../support/payload-keys';
import { installQuietRuntime } from '../support/quiet-runtime';
import { SmtpCatcher } from '../support/smtp-catcher';

/**
 * A top-up whose run ends without credits while its charge went through, on the time-skipping
 * server (Stripe stays unreachable for the whole day of asking), with the real activities.
 */
describe('automatic top-up, late or lost answers from Stripe', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  let sql: Sql;
  let smtp: SmtpCatcher;
  const taskQueue = `topup-late-${randomUUID()}`;
  const dataConverter = testDataConverter();
  const granted: number[] = [];
  const metrics: BusinessMetrics = {
    creditsGranted: (_source, credits) => granted.push(credits),
    creditsRevoked: () => undefined,
    creditsRestored: () => undefined,
    creditsExpired: () => undefined,
    emailSent: () => undefined,
    emailFailed: () => undefined,
    reconcileMissedEvents: () => undefined,
  };
  // A charge Stripe takes (still processing), then an outage for every later question.
  const charged = new Map<string, PaymentIntentSummary>();
  /** Runs while the failure's recovery link is asked for: the failure is being recorded. */
  let whileRecordingFailure: (topupId: string) => Promise<unknown> = () => Promise.resolve();
  /** The Checkout link Stripe hands out for paying on-session, when it answers at all. */
  let offeredCheckout: string | null = null;
  const payments: TopupPaymentGateway = {
    savedCard: () => Promise.resolve('pm_latecard1'),
    chargeOffSession: (request) => {
      const intent: PaymentIntentSummary = {
        id: `pi_late${request.topupId.replace('topup_', '')}x${randomUUID().slice(0, 8)}`,
        status: 'processing',
        amount: request.amountCents,
        amountReceived: 0,
        currency: request.currency,
        livemode: false,
        customerId: request.customerId,
        topupId: request.topupId,
        accountId: request.accountId,
        failureCode: null,
        failureMessage: null,
      };
      charged.set(request.topupId, intent);
      return Promise.resolve({ kind: 'created', paymentIntent: intent });
    },
    retrievePaymentIntent: () => Promise.reject(new Error('connect ETIMEDOUT api.stripe.com')),
    recoveryCheckout: async (request) => {
      await whileRecordingFailure(request.topupId);
      if (offeredCheckout) return { id: `cs_late${randomUUID().slice(0, 8)}`, url: offeredCheckout };
      throw new Stripe.errors.StripeInvalidRequestError({ message: 'no checkout now' });
    },
  };

  beforeAll(async () => {
    installQuietRuntime();
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: findTemporalTestServer() } },
      client: { dataConverter },
    });
    const KEYWORD = encodeSearchAttributeIndexedValueType('KEYWORD');
    if (KEYWORD === undefined) throw new Error('no Keyword search attribute type');
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map(({ name }) => [name, KEYWORD])),
    });
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 5 });
    smtp = await SmtpCatcher.start();
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
      dataConverter,
      activities: createActivities({
        sql,
        mailer: createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' }),
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(false) },
        metrics,
        topups: { payments, returnUrl: 'https://app.example.com/billing' },
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

  /** An account with a saved card and automatic top-up on, and one top-up opened for it. */
  async function openTopup() {
    const accountId = `acct_${randomUUID()}`;
    await createAccount(sql, { id: accountId, email: `${accountId}@customers.test` });
    await sql`UPDATE accounts SET stripe_customer_id = ${`cus_${randomUUID().replaceAll('-', '').slice(0, 12)}`} WHERE id = ${accountId}`;
    await saveTopupSettings(sql, accountId, {
      enabled: true,
      threshold: 300,
      packId: null,
      credits: 100,
      amountCents: 900,
      currency: 'usd',
      monthlyCapCents: 100_000,
      maxConsecutiveFailures: 3,
    });
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO topups (account_id, credits, amount_cents, currency, month)
      VALUES (${accountId}, 100, 900, 'usd', date_trunc('month', now() AT TIME ZONE 'UTC')::date)
      RETURNING id`;
    return { accountId, topupId: (row as { id: string }).id };
  }

  /** A debit of the account, as the API makes them. */
  const spend = (accountId: string, amount: number) =>
    debitCredits(sql, { accountId, amount, idempotencyKey: `job-${randomUUID()}`, reason: 'work' });

  /** Hands an event to Temporal exactly as the webhook and reconciliation do. */
  async function deliver(event: ReturnType<typeof stripeEvent>) {
    const route = routeStripeEvent(event, { purchaseReviewTimeout: '7 days', receiptDeadline: '3 days' });
    if (route.action !== 'start') throw new Error(`${event.type} starts nothing`);
    return (await startEventWorkflow(env.client.workflow, route, event.id, taskQueue)).outcome;
  }

  /** Stripe's `payment_intent.succeeded` for the intent the top-up's charge created. */
  function successOf(topupId: string, accountId: string) {
    const intent = charged.get(topupId) as PaymentIntentSummary;
    return stripeEvent('payment_intent.succeeded', {
      id: intent.id,
      object: 'payment_intent',
      status: 'succeeded',
      amount: 900,
      amount_received: 900,
      currency: 'usd',
      livemode: false,
      customer: intent.customerId,
      metadata: { purpose: 'topup', topupId, accountId },
      last_payment_error: null,
    });
  }

  /** Stripe's `payment_intent.payment_failed` for the intent the top-up's charge created. */
  function declineOf(topupId: string, accountId: string) {
    const intent = charged.get(topupId) as PaymentIntentSummary;
    return stripeEvent('payment_intent.payment_failed', {
      id: intent.id,
      object: 'payment_intent',
      status: 'requires_payment_method',
      amount: 900,
      amount_received: 0,
      currency: 'usd',
      livemode: false,
      customer: intent.customerId,
      metadata: { purpose: 'topup', topupId, accountId },
      last_payment_error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.' },
    });
  }

  const topupRow = (topupId: string) =>
    sql<{ status: string; failure_code: string | null }[]>`
      SELECT status, failure_code FROM topups WHERE id = ${topupId}`.then((rows) => rows[0]);

  it('when Stripe cannot be asked for the whole wait, then the top-up ends failed (not open); its late success grants once, and redeliveries grant nothing more', async () => {
    const { accountId, topupId } = await openTopup();
    const run = await env.client.workflow.start('topupWorkflow', {
      taskQueue,
      workflowId: topupWorkflowId(topupId),
      args: [{ topupId, accountId }],
    });
    const ended = (await run.result()) as TopupWorkflowResult;
    expect(ended).toMatchObject({ stage: 'failed', failureCode: 'stripe_unavailable' });
    expect(await topupRow(topupId)).toEqual({ status: 'failed', failure_code: 'stripe_unavailable' });
    // Not the customer's failure, and still in the month's cap: the charge may have gone through.
    expect(await findTopupSettings(sql, accountId)).toMatchObject({
      consecutiveFailures: 0,
      usedThisMonthCents: 900,
    });

    // The charge went through meanwhile; Stripe's event comes after the run ended.
    const intent = charged.get(topupId) as PaymentIntentSummary;
    const event = successOf(topupId, accountId);
    expect(await deliver(event)).toBe('started');
    const late = env.client.workflow.getHandle(topupLatePaymentWorkflowId(intent.id));
    expect(await late.result()).toMatchObject({ stage: 'succeeded', email: 'sent' });

    expect(await topupRow(topupId)).toEqual({ status: 'succeeded', failure_code: null });
    const ledger = await sql`SELECT delta FROM credit_ledger WHERE business_key = ${topupId}`;
    expect(ledger).toEqual([{ delta: '100' }]);
    expect(await findTopupSettings(sql, accountId)).toMatchObject({
      consecutiveFailures: 0,
      usedThisMonthCents: 900,
    });
    const events = await sql<{ type: string }[]>`
      SELECT type FROM outbound_events WHERE account_id = ${accountId} AND type LIKE 'topup.%' ORDER BY seq`;
    expect(events.map((row) => row.type)).toEqual(['topup.failed', 'topup.succeeded']);
    const [purchase] = await sql`SELECT status, payment_intent_id FROM purchases WHERE id = ${topupId}`;
    expect(purchase).toEqual({ status: 'completed', payment_intent_id: intent.id });

    // The webhook again, reconciliation, the same success under another event ID: nothing more.
    expect(await deliver(event)).toBe('duplicate');
    expect(await deliver(stripeEvent('payment_intent.succeeded', event.data.object))).toBe('duplicate');
    expect(await sql`SELECT delta FROM credit_ledger WHERE business_key = ${topupId}`).toHaveLength(1);
    expect(granted).toEqual([100]);
  });

  it('when Stripe cannot say what became of the charge, then the customer is offered no second payment, the failure is not counted, and no other top-up is charged until the balance recovers', async () => {
    const { accountId, topupId } = await openTopup();
    // Disarmed, as the crossing that opened the top-up leaves it.
    await sql`UPDATE topup_settings SET armed = false WHERE account_id = ${accountId}`;
    offeredCheckout = 'https://checkout.stripe.com/c/pay/cs_late_offered';
    try {
      const run = await env.client.workflow.start('topupWorkflow', {
        taskQueue,
        workflowId: topupWorkflowId(topupId),
        args: [{ topupId, accountId }],
      });
      expect(await run.result()).toMatchObject({ stage: 'failed', failureCode: 'stripe_unavailable' });
    } finally {
      offeredCheckout = null;
    }

    const [mail] = await smtp.waitForMail(`${accountId}@customers.test`);
    expect(mail?.subject).toBe('Your automatic top-up is not finished yet');
    expect(mail?.text).toContain('you do not need to pay again');
    expect(mail?.text).not.toContain('checkout.stripe.com');
    expect(mail?.text).not.toContain('nothing was charged');
    const [row] = await sql`SELECT recovery_url FROM topups WHERE id = ${topupId}`;
    expect(row).toEqual({ recovery_url: null });
    const [failed] = await sql<{ data: { recovery_url: string | null; consecutive_failures: number } }[]>`
      SELECT data FROM outbound_events WHERE account_id = ${accountId} AND type = 'topup.failed'`;
    expect(failed?.data).toMatchObject({ recovery_url: null, consecutive_failures: 0 });
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ enabled: true, consecutiveFailures: 0 });

    // A movement that leaves the balance below the threshold charges nothing new meanwhile.
    await sql.begin((tx) =>
      createGrant(tx, {
        accountId,
        source: 'manual',
        category: 'promotional',
        priority: 10,
        expiresAt: null,
        amount: 10,
        businessKey: `late-manual:${topupId}`,
        kind: 'grant',
        reason: 'a small credit while the top-up is unknown',
      }),
    );
    const open =
      await sql`SELECT id FROM topups WHERE account_id = ${accountId} AND status IN ('pending', 'charging')`;
    expect(open).toEqual([]);
  });

  it("when the top-up's run is gone (past retention) and its success arrives, then a run of its own grants it once", async () => {
    const { accountId, topupId } = await openTopup();
    // Run under another ID: for Temporal, topup:<id> is then a workflow it no longer knows.
    const run = await env.client.workflow.start('topupWorkflow', {
      taskQueue,
      workflowId: `elsewhere:${topupId}`,
      args: [{ topupId, accountId }],
    });
    expect(await run.result()).toMatchObject({ stage: 'failed', failureCode: 'stripe_unavailable' });

    const event = successOf(topupId, accountId);
    expect(await deliver(event)).toBe('started');
    const intent = charged.get(topupId) as PaymentIntentSummary;
    const late = env.client.workflow.getHandle(topupLatePaymentWorkflowId(intent.id));
    expect(await late.result()).toMatchObject({ stage: 'succeeded' });
    expect(await topupRow(topupId)).toEqual({ status: 'succeeded', failure_code: null });
    expect(await sql`SELECT delta FROM credit_ledger WHERE business_key = ${topupId}`).toEqual([
      { delta: '100' },
    ]);
    expect(await deliver(event)).toBe('duplicate');
    expect(await sql`SELECT delta FROM credit_ledger WHERE business_key = ${topupId}`).toHaveLength(1);
  });

  it('when the success arrives while the failure is being recorded, then the same run turns the failure into a success, granted once', async () => {
    const { accountId, topupId } = await openTopup();
    let answered: string | null = null;
    whileRecordingFailure = async (id) => {
      if (id === topupId) answered = await deliver(successOf(topupId, accountId));
    };
    try {
      const run = await env.client.workflow.start('topupWorkflow', {
        taskQueue,
        workflowId: topupWorkflowId(topupId),
        args: [{ topupId, accountId }],
      });
      expect(await run.result()).toMatchObject({ stage: 'succeeded', failureCode: null });
    } finally {
      whileRecordingFailure = () => Promise.resolve();
    }
    expect(answered).toBe('started'); // a signal to the run still open
    expect(await topupRow(topupId)).toEqual({ status: 'succeeded', failure_code: null });
    expect(await sql`SELECT delta FROM credit_ledger WHERE business_key = ${topupId}`).toEqual([
      { delta: '100' },
    ]);
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 0 });
  });

  it('when Stripe reports a decline after the run ended on an unknown outcome, then the customer gets the decline email with its link and topup.failed says so, once', async () => {
    const { accountId, topupId } = await openTopup();
    const address = `${accountId}@customers.test`;
    offeredCheckout = `https://checkout.stripe.com/c/pay/cs_late_${topupId}`;
    try {
      const run = await env.client.workflow.start('topupWorkflow', {
        taskQueue,
        workflowId: topupWorkflowId(topupId),
        args: [{ topupId, accountId }],
      });
      expect(await run.result()).toMatchObject({ stage: 'failed', failureCode: 'stripe_unavailable' });
      const [unfinished] = await smtp.waitForMail(address);
      expect(unfinished?.subject).toBe('Your automatic top-up is not finished yet');

      // Stripe answers at last: the charge was declined.
      const event = declineOf(topupId, accountId);
      expect(await deliver(event)).toBe('started');
      const intent = charged.get(topupId) as PaymentIntentSummary;
      const told = env.client.workflow.getHandle(topupLateDeclineWorkflowId(intent.id));
      expect(await told.result()).toMatchObject({
        stage: 'failed',
        failureCode: 'card_declined',
        email: 'sent',
      });
    } finally {
      offeredCheckout = null;
    }

    const mails = await smtp.settledMail(address, 2);
    expect(mails.map((mail) => mail.subject)).toEqual([
      'Your automatic top-up is not finished yet',
      'Your automatic top-up did not go through',
    ]);
    expect(mails[1]?.text).toContain('the payment was declined (card_declined)');
    expect(mails[1]?.text).toContain(
      `Complete the purchase yourself: https://checkout.stripe.com/c/pay/cs_late_${topupId}`,
    );
    const failedEvents = await sql<{ data: Record<string, unknown> }[]>`
      SELECT data FROM outbound_events WHERE account_id = ${accountId} AND type = 'topup.failed' ORDER BY seq`;
    expect(failedEvents.map((row) => row.data)).toEqual([
      expect.objectContaining({
        failure_code: 'stripe_unavailable',
        recovery_url: null,
        consecutive_failures: 0,
      }),
      expect.objectContaining({
        failure_code: 'card_declined',
        recovery_url: `https://checkout.stripe.com/c/pay/cs_late_${topupId}`,
        consecutive_failures: 1,
        auto_topup_disabled: false,
      }),
    ]);
    expect(await topupRow(topupId)).toEqual({ status: 'failed', failure_code: 'card_declined' });
    // A decline like any other: counted, and no longer holding a share of the month's cap.
    expect(await findTopupSettings(sql, accountId)).toMatchObject({
      enabled: true,
      consecutiveFailures: 1,
      usedThisMonthCents: 0,
    });

    // The same event again, or under another ID: nothing more is sent or counted.
    const again = declineOf(topupId, accountId);
    expect(await deliver(again)).toBe('duplicate');
    expect(await deliver(stripeEvent('payment_intent.payment_failed', again.data.object))).toBe('duplicate');
    expect(await smtp.settledMail(address, 2)).toHaveLength(2);
    expect(
      await sql`SELECT 1 FROM outbound_events WHERE account_id = ${accountId} AND type = 'topup.failed'`,
    ).toHaveLength(2);
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 1 });
  });

  it('when the decline arrives while the unknown outcome is being recorded, then the same run tells the customer of the decline, once', async () => {
    const { accountId, topupId } = await openTopup();
    let answered: string | null = null;
    whileRecordingFailure = async (id) => {
      if (id === topupId && answered === null) answered = await deliver(declineOf(topupId, accountId));
    };
    try {
      const run = await env.client.workflow.start('topupWorkflow', {
        taskQueue,
        workflowId: topupWorkflowId(topupId),
        args: [{ topupId, accountId }],
      });
      expect(await run.result()).toMatchObject({
        stage: 'failed',
        failureCode: 'card_declined',
        email: 'sent',
      });
    } finally {
      whileRecordingFailure = () => Promise.resolve();
    }
    expect(answered).toBe('started'); // a signal to the run still open
    const mails = await smtp.settledMail(`${accountId}@customers.test`, 2);
    expect(mails.map((mail) => mail.subject)).toEqual([
      'Your automatic top-up is not finished yet',
      'Your automatic top-up did not go through',
    ]);
    expect(await topupRow(topupId)).toEqual({ status: 'failed', failure_code: 'card_declined' });
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 1 });
  });

  it('when the grant is refused after the money was taken, then the top-up is recorded owed (told not finished, never counted), and its run keeps trying until the ledger takes it, once', async () => {
    const { accountId, topupId } = await openTopup();
    const address = `${accountId}@customers.test`;
    // A balance the top-up would take past what the ledger holds exactly: refused until spent.
    await sql.begin((tx) =>
      createGrant(tx, {
        accountId,
        source: 'manual',
        category: 'promotional',
        priority: 10,
        expiresAt: null,
        amount: Number.MAX_SAFE_INTEGER - 50,
        businessKey: `late-huge:${topupId}`,
        kind: 'grant',
        reason: 'a balance at the edge of the ledger',
      }),
    );
    const run = await env.client.workflow.start('topupWorkflow', {
      taskQueue,
      workflowId: topupWorkflowId(topupId),
      args: [{ topupId, accountId }],
    });
    await waitUntil(() => charged.get(topupId), { what: 'the charge' });
    expect(await deliver(successOf(topupId, accountId))).toBe('started');

    // Recorded owed while the run waits to try again (time does not pass until its result is awaited).
    await waitUntil(async () => (await topupRow(topupId))?.failure_code === 'grant_failed', {
      what: 'the grant to be recorded owed',
    });
    await waitUntil(async () => (await run.query(topupStatusQuery)).stage === 'grant_retrying', {
      what: 'the run to retry the grant',
    });
    expect(await topupRow(topupId)).toEqual({ status: 'failed', failure_code: 'grant_failed' });
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ enabled: true, consecutiveFailures: 0 });
    const [told] = await smtp.waitForMail(address);
    expect(told?.subject).toBe('Your automatic top-up is not finished yet');
    expect(told?.text).toContain('you do not need to pay again');
    const [owedEvent] = await sql<{ data: Record<string, unknown> }[]>`
      SELECT data FROM outbound_events WHERE account_id = ${accountId} AND type = 'topup.failed'`;
    expect(owedEvent?.data).toMatchObject({
      failure_code: 'grant_failed',
      recovery_url: null,
      consecutive_failures: 0,
    });
    expect(await sql`SELECT 1 FROM credit_ledger WHERE business_key = ${topupId}`).toEqual([]);

    // Spent down, the ledger takes it: the run's next try grants it, once, with its receipt.
    await spend(accountId, 1000);
    expect(await run.result()).toMatchObject({ stage: 'succeeded', failureCode: null, email: 'sent' });
    expect(await topupRow(topupId)).toEqual({ status: 'succeeded', failure_code: null });
    expect(await sql`SELECT delta FROM credit_ledger WHERE business_key = ${topupId}`).toEqual([
      { delta: '100' },
    ]);
    const mails = await smtp.settledMail(address, 2);
    expect(mails.map((mail) => mail.subject)).toEqual([
      'Your automatic top-up is not finished yet',
      'Receipt: 100 credits added to your account',
    ]);
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ enabled: true, consecutiveFailures: 0 });
  });

  it('when a top-up is still open long after any run could have ended, then the sweep records it failed and a newer one is left alone', async () => {
    const old = await openTopup();
    await sql`UPDATE topups SET status = 'charging', created_at = now() - interval '90 days',
              updated_at = now() - interval '61 days' WHERE id = ${old.topupId}`;
    // Opened as long ago, but its run changed it recently: still running, left alone.
    const fresh = await openTopup();
    await sql`UPDATE topups SET status = 'charging', created_at = now() - interval '90 days',
              updated_at = now() - interval '40 days' WHERE id = ${fresh.topupId}`;

    const failed = await failAbandonedTopups(sql, TOPUP_ABANDONED_AFTER_DAYS);
    expect(failed).toContain(old.topupId);
    expect(failed).not.toContain(fresh.topupId);
    expect(await topupRow(old.topupId)).toEqual({ status: 'failed', failure_code: 'abandoned' });
    expect(await topupRow(fresh.topupId)).toEqual({ status: 'charging', failure_code: null });
    // No longer open: the account may top up again, and the cap no longer counts it.
    expect(await findTopupSettings(sql, old.accountId)).toMatchObject({ usedThisMonthCents: 0 });
  });

  it('when the recorded top-up histories are replayed against the changed workflow, then they replay', async () => {
    const histories = ['topup-succeeded', 'topup-failed'].map((name) => ({
      workflowId: name,
      history: JSON.parse(
        readFileSync(path.join(__dirname, '..', 'workflows', 'histories', `${name}.json`), 'utf8'),
      ) as unknown,
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE ?? '' }, dataConverter },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
  });

  describe('after a failure whose charge outcome was unknown', () => {
    async function account(options: { monthlyCapCents?: number; credits?: number } = {}) {
      const accountId = `acct_${randomUUID()}`;
      await createAccount(sql, { id: accountId, email: `${accountId}@customers.test` });
      if (options.credits) {
        await sql.begin((tx) =>
          createGrant(tx, {
            accountId,
            source: 'manual',
            category: 'promotional',
            priority: 10,
            expiresAt: null,
            amount: options.credits as number,
            businessKey: `late-funds:${accountId}`,
            kind: 'grant',
            reason: 'funds before automatic top-up is set',
          }),
        );
      }
      await saveTopupSettings(sql, accountId, {
        enabled: true,
        threshold: 300,
        packId: null,
        credits: 100,
        amountCents: 900,
        currency: 'usd',
        monthlyCapCents: options.monthlyCapCents ?? 100_000,
        maxConsecutiveFailures: 3,
      });
      return accountId;
    }

    async function openTopupOf(accountId: string) {
      const [row] = await sql<{ id: string }[]>`
        INSERT INTO topups (account_id, credits, amount_cents, currency, month)
        VALUES (${accountId}, 100, 900, 'usd', date_trunc('month', now() AT TIME ZONE 'UTC')::date)
        RETURNING id`;
      // Disarmed, as the crossing that opens a top-up leaves it.
      await sql`UPDATE topup_settings SET armed = false WHERE account_id = ${accountId}`;
      return (row as { id: string }).id;
    }

    const fail = (topupId: string, code: string) =>
      failTopup(sql, { topupId, workflowId: `topup:${topupId}`, code, message: code, recoveryUrl: null });

    const owe = (topupId: string) =>
      recordTopupGrantOwed(sql, {
        topupId,
        workflowId: `topup-late:${topupId}`,
        message: 'the balance would leave the range the ledger holds',
      });

    function intent(topupId: string, accountId: string, status: string): PaymentIntentSummary {
      return {
        id: `pi_${topupId.replace('topup_', '')}`,
        status,
        amount: 900,
        amountReceived: status === 'succeeded' ? 900 : 0,
        currency: 'usd',
        livemode: false,
        customerId: null,
        topupId,
        accountId,
        failureCode: status === 'succeeded' ? null : 'card_declined',
        failureMessage: status === 'succeeded' ? null : 'Your card was declined.',
      };
    }

    const late = (topupId: string, accountId: string, status: string) =>
      grantTopup(sql, {
        topupId,
        workflowId: `topup-late:${topupId}`,
        payment: intent(topupId, accountId, status),
        livemode: false,
      });

    const openTopups = (accountId: string) =>
      sql`SELECT id FROM topups WHERE account_id = ${accountId} AND status IN ('pending', 'charging')`;

    it('when a late success grants a top-up whose failure was unknown, then failures after it that were never counted do not stay counted', async () => {
      const accountId = await account();
      await fail(await openTopupOf(accountId), 'card_declined');
      const unknown = await openTopupOf(accountId);
      await fail(unknown, 'stripe_unavailable');
      // The balance came back above the threshold meanwhile, and another charge went unanswered.
      await fail(await openTopupOf(accountId), 'stripe_unavailable');
      expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 1 });

      expect(await late(unknown, accountId, 'succeeded')).toMatchObject({
        outcome: 'granted',
        applied: true,
      });
      // The decline came before this success, and nothing after it was counted.
      expect(await findTopupSettings(sql, accountId)).toMatchObject({
        enabled: true,
        consecutiveFailures: 0,
      });
    });

    it('when Stripe later reports that the unanswered charge was declined, then automatic top-up charges again at the next movement below the threshold', async () => {
      const accountId = await account({ credits: 200 }); // below the threshold
      const topupId = await openTopupOf(accountId);
      await fail(topupId, 'stripe_unavailable');

      // The decline is news for the run to record (what a late run does with it, see above).
      expect(await late(topupId, accountId, 'requires_payment_method')).toMatchObject({
        outcome: 'failed',
        code: 'card_declined',
      });
      await fail(topupId, 'card_declined');
      expect(await findTopupSettings(sql, accountId)).toMatchObject({
        enabled: true,
        consecutiveFailures: 1,
      });

      await spend(accountId, 10); // 190: a movement that leaves the balance below the threshold
      const [opened] = await openTopups(accountId);
      expect(opened).toBeDefined();

      // The same event heard again while that newer top-up is open arms nothing.
      expect(await late(topupId, accountId, 'requires_payment_method')).toMatchObject({ outcome: 'settled' });
      await fail(topupId, 'card_declined');
      const [settings] =
        await sql`SELECT armed, consecutive_failures FROM topup_settings WHERE account_id = ${accountId}`;
      expect(settings).toEqual({ armed: false, consecutive_failures: 1 });
      // No run here charges it: nothing is left for another file's maintenance to start.
      await sql`DELETE FROM balance_follow_ups WHERE account_id = ${accountId}`;
    });

    it('when the decline of an unknown charge comes after the account topped up again, then it is told but neither counted nor re-arming', async () => {
      const accountId = await account({ credits: 200 });
      const topupId = await openTopupOf(accountId);
      await fail(topupId, 'stripe_unavailable');
      const newer = await openTopupOf(accountId); // the balance recovered and crossed again

      expect(await fail(topupId, 'card_declined')).toEqual({
        emailKey: `topup-declined:${topupId}`,
        autoTopupDisabled: false,
      });
      expect(await topupRow(topupId)).toEqual({ status: 'failed', failure_code: 'card_declined' });
      const [settings] =
        await sql`SELECT armed, consecutive_failures FROM topup_settings WHERE account_id = ${accountId}`;
      expect(settings).toEqual({ armed: false, consecutive_failures: 0 });
      // Answered as it was recorded, however often it is asked again.
      expect(await fail(topupId, 'card_declined')).toEqual({
        emailKey: `topup-declined:${topupId}`,
        autoTopupDisabled: false,
      });
      const told = await sql`SELECT key FROM email_outbox WHERE key LIKE ${`%:${topupId}`} ORDER BY key`;
      expect(told).toEqual([{ key: `topup-declined:${topupId}` }, { key: `topup-failed:${topupId}` }]);
      await fail(newer, 'card_declined');
    });

    it('when the grant of a late success is refused on a top-up recorded failed, then it is marked owed, its count undone, and nothing more is sent', async () => {
      const accountId = await account();
      const declined = await openTopupOf(accountId);
      await fail(declined, 'card_declined');
      const unknown = await openTopupOf(accountId);
      await fail(unknown, 'stripe_unavailable');
      expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 1 });

      for (const topupId of [declined, unknown]) {
        expect(await owe(topupId)).toEqual({ emailKey: null, autoTopupDisabled: false });
        expect(await topupRow(topupId)).toEqual({ status: 'failed', failure_code: 'grant_failed' });
        expect(await owe(topupId)).toEqual({ emailKey: null, autoTopupDisabled: false });
      }
      // The card paid after all: not a failure of the customer's.
      expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 0 });
      const sent = await sql`SELECT key FROM email_outbox WHERE account_id = ${accountId} ORDER BY key`;
      expect(sent).toEqual([{ key: `topup-failed:${declined}` }, { key: `topup-failed:${unknown}` }]);
      const failedEvents = await sql`
        SELECT 1 FROM outbound_events WHERE account_id = ${accountId} AND type = 'topup.failed'`;
      expect(failedEvents).toHaveLength(2);
    });

    it("when a charge's outcome is unknown, then it still counts against the month's cap, so that its late success cannot take the month past it", async () => {
      const accountId = await account({ monthlyCapCents: 900, credits: 400 }); // one top-up a month
      const unknown = await openTopupOf(accountId);
      await fail(unknown, 'stripe_unavailable');
      expect(await findTopupSettings(sql, accountId)).toMatchObject({ usedThisMonthCents: 900 });

      await spend(accountId, 1); // 399: above the threshold, armed again
      await spend(accountId, 150); // 249: a crossing, but the month may already be spent
      expect(await openTopups(accountId)).toEqual([]);
      expect(await findTopupSettings(sql, accountId)).toMatchObject({
        lastSkippedReason: 'the monthly cap is reached',
      });

      // The unanswered charge went through: granted, and the month took what its cap allows.
      expect(await late(unknown, accountId, 'succeeded')).toMatchObject({ outcome: 'granted' });
      const [month] = await sql<{ charged: string }[]>`
        SELECT COALESCE(SUM(amount_cents), 0)::text AS charged FROM topups
        WHERE account_id = ${accountId} AND status = 'succeeded'`;
      expect(month).toEqual({ charged: '900' });
      await sql`DELETE FROM balance_follow_ups WHERE account_id = ${accountId}`;
    });
  });
});
