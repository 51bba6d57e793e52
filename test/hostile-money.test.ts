import { MockActivityEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createTopupActivities, type TopupPaymentGateway } from '../activities/topups/topup';
import type { ActivityDependencies } from '../activities/dependencies';
import type { PaymentIntentSummary } from '../stripe/payment-intent';
import { topupStatusQuery, topupWorkflowId, type TopupWorkflowResult } from '../workflows/topups/contract';
import { parseBackfillArguments, planBackfill, UsageError } from '../cli/reconcile';
import { stripeEvent } from '../stripe/fixtures/index';
import { checkedBalance, grantDirectly, PACKS } from './support/billing';
import { startHarness, type Harness } from './support/harness';
import { testDataConverter } from './support/payload-keys';
import { startReconcileWorker, type ReconcileWorker } from './support/reconcile';
import { StripeStandIn } from './support/stripe-stand-in';
import { waitUntil } from './support/wait';

const LOW_SUBJECT = 'Your credit balance is running low';
const STARTER = PACKS.starter; // 100 credits for 900 cents
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('automatic top-up against an unlucky Stripe', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  let reconcile: ReconcileWorker;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness({
      configOverrides: {
        STRIPE_SECRET_KEY: 'sk_test_standin0123456789',
        STRIPE_API_BASE_URL: stripe.url,
        CHECKOUT_ALLOWED_REDIRECT_HOSTS: 'app.example.com',
      },
    });
    reconcile = await startReconcileWorker(h, stripe);
  });
  afterAll(async () => {
    await reconcile?.stop();
    await h?.close();
    await stripe?.stop();
  });

  /** An account that bought once with its card saved, holding `credits`, topping up below 300. */
  async function accountWithCard(credits: number, monthlyCapCents = 100_000) {
    const account = await h.newAccount();
    const checkout = await h.api('POST', '/v1/checkout/sessions', {
      accountId: account.id,
      packId: 'starter',
      successUrl: 'https://app.example.com/ok',
      cancelUrl: 'https://app.example.com/cancel',
      savePaymentMethod: true,
    });
    expect(checkout.status).toBe(201);
    await grantDirectly(h.sql, account.id, { key: `fund-${randomUUID()}`, amount: credits });
    const settings = await h.api('PUT', `/v1/accounts/${account.id}/auto-topup`, {
      enabled: true,
      threshold: 300,
      packId: 'starter',
      monthlyCapCents,
    });
    expect(settings.status).toBe(200);
    return account;
  }

  const debit = (accountId: string, amount: number) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, {
      amount,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'work',
    });

  async function nthTopup(accountId: string, n: number): Promise<string> {
    const rows = await waitUntil(
      async () => {
        const found = await h.sql<{ id: string }[]>`
          SELECT id FROM topups WHERE account_id = ${accountId} ORDER BY created_at, id`;
        return found.length >= n ? found : null;
      },
      { what: `top-up ${n} of ${accountId}` },
    );
    return (rows[n - 1] as { id: string }).id;
  }

  const resultOf = (topupId: string) =>
    h.temporal.workflow.getHandle(topupWorkflowId(topupId)).result() as Promise<TopupWorkflowResult>;
  const ledgerRowsOf = (key: string) =>
    h.sql<{ delta: string }[]>`SELECT delta FROM credit_ledger WHERE business_key = ${key}`;

  it("when a top-up's success event is missed, then reconcile hands it to the waiting top-up, which grants once; later deliveries and runs grant nothing more", async () => {
    const account = await accountWithCard(400);
    await debit(account.id, 150); // 250: below 300
    const topupId = await nthTopup(account.id, 1);
    const intent = await waitUntil(() => stripe.paymentIntentsOfTopup(topupId)[0], { what: 'the intent' });
    const handle = h.temporal.workflow.getHandle(topupWorkflowId(topupId));
    await waitUntil(async () => (await handle.query(topupStatusQuery)).stage === 'awaiting_payment_event');

    stripe.clearEvents();
    const event = stripeEvent('payment_intent.succeeded', intent, { created: nowSeconds() - 5 });
    stripe.publishEvent(event);
    await h.sql`
      INSERT INTO reconcile_watermarks (name, watermark) VALUES (${reconcile.watermark}, to_timestamp(${nowSeconds() - 3600}))
      ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark`;

    const found = await (await reconcile.run()).result;
    expect(found).toMatchObject({ events: 1, started: 1, rejected: 0 });
    expect(await resultOf(topupId)).toMatchObject({ stage: 'succeeded', paymentIntentId: intent.id });
    expect(await ledgerRowsOf(topupId)).toEqual([{ delta: '100' }]);
    expect(await checkedBalance(h, account.id)).toBe(250 + STARTER.credits);

    // The webhook comes late, then the next run reads the same event again: nothing more.
    const late = await h.deliver(event);
    expect(late).toMatchObject({ status: 200, body: { status: 'duplicate' } });
    const again = await (await reconcile.run()).result;
    expect(again).toMatchObject({ events: 1, started: 0, duplicates: 1 });
    expect(await ledgerRowsOf(topupId)).toEqual([{ delta: '100' }]);
    expect(await checkedBalance(h, account.id)).toBe(250 + STARTER.credits);
    const [row] = await h.sql`SELECT status FROM topups WHERE id = ${topupId}`;
    expect(row).toEqual({ status: 'succeeded' });
    stripe.clearEvents();
  });

  it('when the charge is retried after its payment intent was recorded, then it answers that intent and charges nothing new (even with another card saved meanwhile)', async () => {
    const account = await h.newAccount();
    await h.sql`UPDATE accounts SET stripe_customer_id = 'cus_hostile1' WHERE id = ${account.id}`;
    const [topup] = await h.sql<{ id: string }[]>`
      INSERT INTO topups (account_id, credits, amount_cents, currency, month, status, payment_intent_id)
      VALUES (${account.id}, 100, 900, 'usd', date_trunc('month', now())::date, 'charging', 'pi_firstattempt1')
      RETURNING id`;
    const topupId = (topup as { id: string }).id;
    const charges: unknown[] = [];
    const first: PaymentIntentSummary = {
      id: 'pi_firstattempt1',
      status: 'succeeded',
      amount: 900,
      amountReceived: 900,
      currency: 'usd',
      livemode: false,
      customerId: 'cus_hostile1',
      topupId,
      accountId: account.id,
      failureCode: null,
      failureMessage: null,
    };
    const payments: TopupPaymentGateway = {
      savedCard: () => Promise.resolve('pm_replacedcard'),
      chargeOffSession: (request) => {
        charges.push(request);
        // What Stripe answers the same idempotency key with other parameters (another card).
        return Promise.reject(
          new Error('Keys for idempotent requests can only be used with the same parameters'),
        );
      },
      retrievePaymentIntent: (id) =>
        id === first.id ? Promise.resolve(first) : Promise.reject(new Error(`no such intent ${id}`)),
      recoveryCheckout: () => Promise.reject(new Error('not expected')),
    };
    const activities = createTopupActivities({
      sql: h.sql,
      config: { stripe: { livemode: false } },
      topups: { payments, returnUrl: 'https://app.example.com/billing' },
    } as unknown as ActivityDependencies);
    const answer = await new MockActivityEnvironment().run(activities.requestTopupPayment, { topupId });
    expect(answer).toEqual({ kind: 'submitted', paymentIntentId: 'pi_firstattempt1' });
    expect(charges).toEqual([]);
    await h.sql`UPDATE topups SET status = 'failed' WHERE id = ${topupId}`;
  });

  it('when Stripe refuses the key mid-top-up, then the top-up is recorded failed at once (not left charging), and the next debit tops up again', async () => {
    const account = await accountWithCard(400);
    // A restricted key without PaymentIntents write: every request is refused, retried or not.
    stripe.failNext(
      403,
      { type: 'invalid_request_error', message: 'The provided key does not have the required permissions' },
      2,
    );
    await debit(account.id, 150); // 250
    const topupId = await nthTopup(account.id, 1);
    const result = await waitUntil(
      async () => {
        const [row] = await h.sql<{ status: string }[]>`SELECT status FROM topups WHERE id = ${topupId}`;
        return row?.status === 'failed' ? resultOf(topupId) : null;
      },
      { what: 'the refused top-up to be recorded failed', timeoutMs: 60_000 },
    );
    expect(result).toMatchObject({ stage: 'failed', failureCode: 'stripe_refused' });
    expect(await ledgerRowsOf(topupId)).toEqual([]);

    await debit(account.id, 10); // 240: still below, re-armed by the failure
    const second = await nthTopup(account.id, 2);
    const intent = await waitUntil(() => stripe.paymentIntentsOfTopup(second)[0], { what: 'the intent' });
    await h.deliver(stripeEvent('payment_intent.succeeded', intent));
    expect((await resultOf(second)).stage).toBe('succeeded');
    expect(await checkedBalance(h, account.id)).toBe(240 + STARTER.credits);
  });

  it('when the low-balance threshold is deleted and set again, then the next crossing still sends its notice', async () => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: `fund-${randomUUID()}`, amount: 1000 });
    const low = (threshold: number) => h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold });
    const lowMail = () => h.smtp.to(account.email).filter((mail) => mail.subject === LOW_SUBJECT);
    expect((await low(500)).status).toBe(200);
    await debit(account.id, 600); // 400: first notice
    await waitUntil(() => lowMail().length === 1, { what: 'the first notice' });

    expect((await h.api('DELETE', `/v1/accounts/${account.id}/low-balance`)).status).toBe(204);
    expect((await low(500)).body).toMatchObject({ armed: false });
    await grantDirectly(h.sql, account.id, { key: `refill-${randomUUID()}`, amount: 200 }); // 600: re-armed
    await debit(account.id, 200); // 400: a second crossing
    await waitUntil(() => lowMail().length === 2, { what: 'the second notice', timeoutMs: 20_000 });
    const events = await h.sql<{ notice: string }[]>`
      SELECT data->>'notice' AS notice FROM outbound_events
      WHERE account_id = ${account.id} AND type = 'balance.low' ORDER BY seq`;
    expect(events.map((row) => row.notice)).toEqual(['1', '2']);
  });

  it('when a backfill is planned, then a top-up payment event whose top-up workflow ran is a duplicate, as the backfill would find it', async () => {
    const intent = {
      id: 'pi_plannedtopup1',
      object: 'payment_intent',
      status: 'succeeded',
      amount: 900,
      amount_received: 900,
      currency: 'usd',
      livemode: false,
      customer: 'cus_planned1',
      metadata: { purpose: 'topup', topupId: 'topup_424242', accountId: 'acct_planned' },
      last_payment_error: null,
    };
    const event = stripeEvent('payment_intent.succeeded', intent);
    const asked: string[] = [];
    const planned = await planBackfill({
      listEvents: ({ types }) =>
        Promise.resolve({ events: types.includes(event.type) ? [event] : [], hasMore: false }),
      workflowExists: (workflowId) => {
        asked.push(workflowId);
        return Promise.resolve(workflowId === topupWorkflowId('topup_424242'));
      },
      routes: {
        purchaseReviewTimeout: h.config.purchaseReviewTimeout,
        receiptDeadline: h.config.receiptDeadline,
      },
      window: { fromSeconds: nowSeconds() - 3600, untilSeconds: nowSeconds() },
    });
    expect(planned).toEqual([expect.objectContaining({ eventId: event.id, outcome: 'duplicate' })]);
    expect(asked).toEqual([topupWorkflowId('topup_424242')]);
  });

  it('when a backfill names a time without an offset or a day that does not exist, then it is read as UTC or refused', () => {
    const now = Date.UTC(2026, 11, 20) / 1000;
    // The operator's machine is not on UTC: the window must not move with it.
    const parse = `import { parseBackfillArguments } from ${JSON.stringify(path.join(__dirname, '..', 'cli', 'reconcile'))};
      console.log(JSON.stringify(parseBackfillArguments(['--since', '2026-11-20T10:00', '--until', '2026-11-21'], ${now})));`;
    const cli = spawnSync(path.join(__dirname, '..', 'node_modules', '.bin', 'tsx'), ['-e', parse], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'America/New_York', NODE_ENV: 'test' },
    });
    expect(cli.stderr).toBe('');
    expect(JSON.parse(cli.stdout) as unknown).toMatchObject({
      fromSeconds: Date.UTC(2026, 10, 20, 10) / 1000,
      untilSeconds: Date.UTC(2026, 10, 21) / 1000,
    });
    expect(() => parseBackfillArguments(['--since', '2026-11-31'], now)).toThrow(UsageError);
    expect(() => parseBackfillArguments(['--since', '2026-11-20T24:30Z'], now)).toThrow(UsageError);
  });

  it('when the recorded top-up histories are replayed against the workflow as changed here, then they replay', async () => {
    const histories = ['topup-succeeded', 'topup-failed'].map((name) => ({
      workflowId: name,
      history: JSON.parse(
        readFileSync(path.join(__dirname, 'workflows', 'histories', `${name}.json`), 'utf8'),
      ) as unknown,
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      {
        workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE ?? '' },
        dataConverter: testDataConverter(),
      },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
  });

  it('when settings carry odd bytes or out-of-range numbers, then each is refused with 400 and nothing is saved', async () => {
    const account = await h.newAccount();
    const put = (body: Record<string, unknown>) =>
      h.api('PUT', `/v1/accounts/${account.id}/auto-topup`, body);
    const valid = { enabled: true, threshold: 200, packId: 'starter', monthlyCapCents: 20_000 };
    const odd: Record<string, unknown>[] = [
      { ...valid, packId: 'star\u0000ter' },
      { ...valid, packId: '\ud800' },
      { ...valid, threshold: 2 ** 53 },
      { ...valid, threshold: '200' },
      { ...valid, threshold: 1.5 },
      { ...valid, threshold: 0 },
      { ...valid, threshold: -1 },
      { ...valid, monthlyCapCents: 1e300 },
      { ...valid, maxConsecutiveFailures: 0 },
    ];
    for (const body of odd) expect({ body, status: (await put(body)).status }).toEqual({ body, status: 400 });
    for (const threshold of [2 ** 53, '1', 0.5, 0, -5]) {
      const answer = await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold });
      expect({ threshold, status: answer.status }).toEqual({ threshold, status: 400 });
    }
    expect((await h.api('GET', `/v1/accounts/${account.id}/auto-topup`)).status).toBe(404);
    const checkout = await h.api('POST', '/v1/checkout/sessions', {
      accountId: account.id,
      packId: 'star\u0000ter',
      successUrl: 'https://app.example.com/ok',
      cancelUrl: 'https://app.example.com/cancel',
    });
    expect(checkout.status).toBe(400);
  });

  it("when a crossing is skipped for the month's cap, then the first debit below the threshold in the next month tops up", async () => {
    const account = await accountWithCard(400, STARTER.amount); // one top-up a month
    await debit(account.id, 150); // 250
    const first = await nthTopup(account.id, 1);
    const intent = await waitUntil(() => stripe.paymentIntentsOfTopup(first)[0], { what: 'the intent' });
    await h.deliver(stripeEvent('payment_intent.succeeded', intent));
    expect((await resultOf(first)).stage).toBe('succeeded'); // 350

    await debit(account.id, 100); // 250: the cap is reached
    const settings = await h.api('GET', `/v1/accounts/${account.id}/auto-topup`);
    expect(settings.body).toMatchObject({ lastSkippedReason: 'the monthly cap is reached' });

    // A new month (UTC): this month's top-up now belongs to the one before.
    await h.sql`UPDATE topups SET month = (month - interval '1 month')::date WHERE account_id = ${account.id}`;
    await debit(account.id, 10); // 240: still below, in a month with nothing used
    const second = await nthTopup(account.id, 2);
    const next = await waitUntil(() => stripe.paymentIntentsOfTopup(second)[0], { what: 'the intent' });
    await h.deliver(stripeEvent('payment_intent.succeeded', next));
    expect((await resultOf(second)).stage).toBe('succeeded');
    expect(await checkedBalance(h, account.id)).toBe(240 + STARTER.credits);
  });
});
