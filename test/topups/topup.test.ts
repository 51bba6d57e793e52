import { MockActivityEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTopupActivities, type TopupPaymentGateway } from '../../activities/topups/topup';
import type { ActivityDependencies } from '../../activities/dependencies';
import { summarizePaymentIntent, type PaymentIntentSummary } from '../../stripe/payment-intent';
import { checkTopupPayment } from '../../domain/topup-rules';
import {
  topupLateDeclineWorkflowId,
  topupStatusQuery,
  topupWorkflowId,
  type TopupWorkflowResult,
} from '../../workflows/topups/contract';
import { findTemporalCli } from '../../scripts/temporal-cli';
import { stripeEvent } from '../../stripe/fixtures/index';
import { debitCredits } from '../../credits/debits';
import { checkedBalance, grantDirectly, PACKS, runMaintenance } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';
import { startReconcileWorker, type ReconcileWorker } from '../support/reconcile';
import { StripeStandIn } from '../support/stripe-stand-in';
import { waitUntil } from '../support/wait';

const SUCCESS_URL = 'https://app.example.com/billing/success';
const CANCEL_URL = 'https://app.example.com/billing';
const STARTER = PACKS.starter; // 100 credits for 900 cents
const FAILED_SUBJECT = 'Your automatic top-up did not go through';
const DISABLED_SUBJECT = 'Automatic top-up failed and is now turned off';

describe('automatic top-up', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness({
      configOverrides: {
        STRIPE_SECRET_KEY: 'sk_test_standin0123456789',
        STRIPE_API_BASE_URL: stripe.url,
        CHECKOUT_ALLOWED_REDIRECT_HOSTS: 'app.example.com',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await stripe?.stop();
  });

  /** An account that bought once with its card saved, holding `credits`, with auto top-up on. */
  async function accountWithCard(options: {
    credits: number;
    threshold: number;
    monthlyCapCents?: number;
    lowBalanceThreshold?: number;
  }) {
    const account = await h.newAccount();
    const checkout = await h.api('POST', '/v1/checkout/sessions', {
      accountId: account.id,
      packId: 'starter',
      successUrl: SUCCESS_URL,
      cancelUrl: CANCEL_URL,
      savePaymentMethod: true,
    });
    expect(checkout.status).toBe(201);
    await grantDirectly(h.sql, account.id, { key: 'fund', amount: options.credits });
    if (options.lowBalanceThreshold) {
      await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, {
        threshold: options.lowBalanceThreshold,
      });
    }
    const settings = await h.api('PUT', `/v1/accounts/${account.id}/auto-topup`, {
      enabled: true,
      threshold: options.threshold,
      packId: 'starter',
      monthlyCapCents: options.monthlyCapCents ?? 100_000,
    });
    expect(settings.status).toBe(200);
    expect(settings.body).toMatchObject({ enabled: true, savedCard: true, amountCents: STARTER.amount });
    return account;
  }

  const debit = (accountId: string, amount: number) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, {
      amount,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'work',
    });

  async function topupsOf(accountId: string) {
    return h.sql<{ id: string; status: string; amount_cents: string }[]>`
      SELECT id, status, amount_cents FROM topups WHERE account_id = ${accountId} ORDER BY created_at, id`;
  }

  /** The `n`-th top-up of the account (1-based), once it exists. */
  async function nthTopup(accountId: string, n: number): Promise<string> {
    const rows = await waitUntil(
      async () => {
        const found = await topupsOf(accountId);
        return found.length >= n ? found : null;
      },
      { what: `top-up ${n} of ${accountId}` },
    );
    return (rows[n - 1] as { id: string }).id;
  }

  const paymentIntentOf = (topupId: string) =>
    waitUntil(() => stripe.paymentIntentsOfTopup(topupId)[0], { what: `the payment intent of ${topupId}` });

  const resultOf = (topupId: string) =>
    h.temporal.workflow.getHandle(topupWorkflowId(topupId)).result() as Promise<TopupWorkflowResult>;

  async function eventsOf(accountId: string, type: string) {
    const rows = await h.sql<{ data: Record<string, unknown> }[]>`
      SELECT data FROM outbound_events WHERE account_id = ${accountId} AND type = ${type} ORDER BY seq`;
    return rows.map((row) => row.data);
  }

  const ledgerRowsOf = (key: string) =>
    h.sql<{ delta: string }[]>`SELECT delta FROM credit_ledger WHERE business_key = ${key}`;

  it('when 50 concurrent debits cross the threshold, then one notice and one off-session top-up, granted once its success event arrives', async () => {
    const account = await accountWithCard({ credits: 1000, threshold: 300, lowBalanceThreshold: 500 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => debit(account.id, 15)));
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 201)); // 250 left

    const topupId = await nthTopup(account.id, 1);
    const intent = await paymentIntentOf(topupId);
    const handle = h.temporal.workflow.getHandle(topupWorkflowId(topupId));
    await waitUntil(async () => (await handle.query(topupStatusQuery)).stage === 'awaiting_payment_event');

    const charges = stripe
      .paymentIntentCreations()
      .filter((r) => r.form['metadata[accountId]'] === account.id);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({
      idempotencyKey: `topup:${topupId}`,
      form: expect.objectContaining({
        amount: String(STARTER.amount),
        currency: 'usd',
        confirm: 'true',
        off_session: 'true',
        'metadata[purpose]': 'topup',
        'metadata[topupId]': topupId,
      }),
    });
    expect(charges[0]?.form.customer).toMatch(/^cus_/);
    expect(charges[0]?.form.payment_method).toMatch(/^(pm|card)_/);

    const delivered = await h.deliver(stripeEvent('payment_intent.succeeded', intent));
    expect(delivered).toMatchObject({ status: 200, body: { workflowId: topupWorkflowId(topupId) } });
    const result = await resultOf(topupId);
    expect(result).toMatchObject({ stage: 'succeeded', email: 'sent', paymentIntentId: intent.id });

    expect(await checkedBalance(h, account.id)).toBe(250 + STARTER.credits);
    expect(await topupsOf(account.id)).toEqual([
      { id: topupId, status: 'succeeded', amount_cents: String(STARTER.amount) },
    ]);
    const mails = await h.smtp.settledMail(account.email, 2);
    expect(mails.map((mail) => mail.subject).sort()).toEqual(
      ['Receipt: 100 credits added to your account', 'Your credit balance is running low'].sort(),
    );
    expect(await eventsOf(account.id, 'balance.low')).toHaveLength(1);
    expect(await eventsOf(account.id, 'topup.succeeded')).toEqual([
      expect.objectContaining({ topup_id: topupId, credits: 100, amount_cents: 900, balance_after: 350 }),
    ]);
    const [purchase] =
      await h.sql`SELECT kind, status, payment_intent_id FROM purchases WHERE id = ${topupId}`;
    expect(purchase).toEqual({ kind: 'topup', status: 'completed', payment_intent_id: intent.id });
    if (process.env.RECORD_HISTORIES === '1') saveHistory('topup-succeeded', topupWorkflowId(topupId));
  });

  it("when a top-up's success event is delivered twice (and once more under another event ID), then it is granted once", async () => {
    const account = await accountWithCard({ credits: 400, threshold: 300 });
    await debit(account.id, 150); // 250
    const topupId = await nthTopup(account.id, 1);
    const intent = await paymentIntentOf(topupId);
    const event = stripeEvent('payment_intent.succeeded', intent);
    const answers = await Promise.all([h.deliver(event), h.deliver(event)]);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect((await resultOf(topupId)).stage).toBe('succeeded');
    const again = await h.deliver(stripeEvent('payment_intent.succeeded', intent));
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('duplicate');

    expect(await ledgerRowsOf(topupId)).toEqual([{ delta: '100' }]);
    expect(await checkedBalance(h, account.id)).toBe(350);
    expect(await eventsOf(account.id, 'topup.succeeded')).toHaveLength(1);
  });

  it('when the card needs authentication, then no credits, an email with a link to pay on-session, and topup.failed', async () => {
    const account = await accountWithCard({ credits: 400, threshold: 300 });
    stripe.nextOffSessionPayments('authentication_required');
    await debit(account.id, 150);
    const topupId = await nthTopup(account.id, 1);
    const result = await resultOf(topupId);
    expect(result).toMatchObject({
      stage: 'failed',
      failureCode: 'authentication_required',
      autoTopupDisabled: false,
      email: 'sent',
    });
    expect(await checkedBalance(h, account.id)).toBe(250);
    expect(await ledgerRowsOf(topupId)).toEqual([]);

    const [mail] = await h.smtp.settledMail(account.email, 1);
    expect(mail?.subject).toBe(FAILED_SUBJECT);
    const link = /https:\/\/checkout\.stripe\.com\/c\/pay\/(cs_test_\w+)/.exec(mail?.text ?? '');
    expect(link).not.toBeNull();
    // The link is an ordinary checkout, sold to this account: its purchase workflow grants it.
    const [snapshot] = await h.sql`
      SELECT account_id, credits, amount_cents FROM checkout_sessions WHERE id = ${link?.[1] ?? ''}`;
    expect(snapshot).toEqual({ account_id: account.id, credits: '100', amount_cents: '900' });
    expect(await eventsOf(account.id, 'topup.failed')).toEqual([
      expect.objectContaining({
        topup_id: topupId,
        failure_code: 'authentication_required',
        recovery_url: link?.[0],
        auto_topup_disabled: false,
      }),
    ]);
    const settings = await h.api('GET', `/v1/accounts/${account.id}/auto-topup`);
    expect(settings.body).toMatchObject({ enabled: true, consecutiveFailures: 1, usedThisMonthCents: 0 });
    expect(settings.body.recentTopups[0]).toMatchObject({
      id: topupId,
      status: 'failed',
      recoveryUrl: link?.[0],
    });

    // Stripe's payment_failed event for the same intent changes nothing: the decline is known.
    const [intent] = stripe.paymentIntentsOfTopup(topupId);
    const failedEvent = await h.deliver(stripeEvent('payment_intent.payment_failed', intent ?? {}));
    // The answer names the run the event started: one of its own, the top-up's run having ended.
    expect(failedEvent).toMatchObject({
      status: 200,
      body: { status: 'started', workflowId: topupLateDeclineWorkflowId(intent?.id as string) },
    });
    const heard = h.temporal.workflow.getHandle(failedEvent.body.workflowId as string);
    expect(await heard.result()).toMatchObject({ stage: 'already_settled', email: 'not_applicable' });
    expect(await eventsOf(account.id, 'topup.failed')).toHaveLength(1);
    expect(await h.smtp.settledMail(account.email, 1)).toHaveLength(1);
    expect((await h.api('GET', `/v1/accounts/${account.id}/auto-topup`)).body).toMatchObject({
      consecutiveFailures: 1,
    });
    if (process.env.RECORD_HISTORIES === '1') saveHistory('topup-failed', topupWorkflowId(topupId));
  });

  it('when three top-ups in a row are declined, then automatic top-up turns itself off, and says so', async () => {
    const account = await accountWithCard({ credits: 400, threshold: 300 });
    stripe.nextOffSessionPayments('card_declined', 'card_declined', 'card_declined');
    await debit(account.id, 150); // 250: below, first attempt
    for (const n of [1, 2, 3]) {
      if (n > 1) await debit(account.id, 10); // still below: a failed attempt re-armed it
      const result = await resultOf(await nthTopup(account.id, n));
      expect(result).toMatchObject({
        stage: 'failed',
        failureCode: 'card_declined',
        autoTopupDisabled: n === 3,
      });
    }
    await debit(account.id, 10);
    expect(await topupsOf(account.id)).toHaveLength(3);
    expect(await checkedBalance(h, account.id)).toBe(220);

    const mails = await h.smtp.settledMail(account.email, 3);
    expect(mails.map((mail) => mail.subject)).toEqual([FAILED_SUBJECT, FAILED_SUBJECT, DISABLED_SUBJECT]);
    expect(mails[2]?.text).toContain('automatic top-up is now off');
    const failed = await eventsOf(account.id, 'topup.failed');
    expect(failed.map((event) => [event.consecutive_failures, event.auto_topup_disabled])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    const settings = await h.api('GET', `/v1/accounts/${account.id}/auto-topup`);
    expect(settings.body).toMatchObject({ enabled: false, consecutiveFailures: 3 });
    expect(settings.body.disabledReason).toContain('3 failed top-ups in a row');

    // Turning it on again clears the count.
    const again = await h.api('PUT', `/v1/accounts/${account.id}/auto-topup`, {
      enabled: true,
      threshold: 300,
      packId: 'starter',
      monthlyCapCents: 100_000,
    });
    expect(again.body).toMatchObject({ enabled: true, consecutiveFailures: 0, disabledReason: null });
  });

  it('when crossings keep coming, then the monthly cap is never exceeded, however many debits race', async () => {
    const account = await accountWithCard({
      credits: 400,
      threshold: 300,
      monthlyCapCents: 2 * STARTER.amount,
    });
    for (const round of [1, 2, 3]) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => debit(account.id, 6)));
      expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 201));
      if (round === 3) break;
      const topupId = await nthTopup(account.id, round);
      const intent = await paymentIntentOf(topupId);
      await h.deliver(stripeEvent('payment_intent.succeeded', intent));
      expect((await resultOf(topupId)).stage).toBe('succeeded');
    }
    const settings = await waitUntil(async () => {
      const read = await h.api('GET', `/v1/accounts/${account.id}/auto-topup`);
      return read.body.lastSkippedReason ? (read.body as Record<string, unknown>) : null;
    });
    expect(settings).toMatchObject({
      lastSkippedReason: 'the monthly cap is reached',
      usedThisMonthCents: 2 * STARTER.amount,
      enabled: true,
    });
    expect(await topupsOf(account.id)).toHaveLength(2);
    expect(await checkedBalance(h, account.id)).toBe(400 - 3 * 120 + 2 * 100);
  });

  it('when the amount received differs from the top-up price, then nothing is granted and the top-up is refused', async () => {
    const account = await accountWithCard({ credits: 400, threshold: 300 });
    await debit(account.id, 150);
    const topupId = await nthTopup(account.id, 1);
    const intent = await paymentIntentOf(topupId);
    await h.deliver(stripeEvent('payment_intent.succeeded', { ...intent, amount_received: 500 }));
    const result = await resultOf(topupId);
    expect(result).toMatchObject({ stage: 'refused', failureCode: 'amount_mismatch' });
    expect(await ledgerRowsOf(topupId)).toEqual([]);
    expect(await checkedBalance(h, account.id)).toBe(250);
    expect(await topupsOf(account.id)).toEqual([
      { id: topupId, status: 'refused', amount_cents: String(STARTER.amount) },
    ]);
    const status = await h.temporal.workflow.getHandle(topupWorkflowId(topupId)).query(topupStatusQuery);
    expect(status.reason).toContain('received 500, price 900');
  });

  it('when the process dies between the debit that crossed and the start of its top-up, then the maintenance schedule starts it', async () => {
    const account = await accountWithCard({ credits: 400, threshold: 300 });
    // Straight to the database: the commit happened, the start did not.
    await debitCredits(h.sql, {
      accountId: account.id,
      amount: 150,
      idempotencyKey: 'crash',
      reason: 'work',
    });
    const topupId = await nthTopup(account.id, 1);
    expect(stripe.paymentIntentsOfTopup(topupId)).toEqual([]);
    await runMaintenance(h, { followUpsOf: [account.id] });
    const intent = await paymentIntentOf(topupId);
    await h.deliver(stripeEvent('payment_intent.succeeded', intent));
    expect((await resultOf(topupId)).stage).toBe('succeeded');
    expect(await checkedBalance(h, account.id)).toBe(350);
  });

  it("when a checkout's own payment intent succeeds, then the event is acknowledged and ignored (its session grants)", async () => {
    const intent = {
      id: `pi_${randomUUID().replaceAll('-', '')}`,
      object: 'payment_intent',
      status: 'succeeded',
      amount: 900,
      amount_received: 900,
      currency: 'usd',
      livemode: false,
      metadata: { purpose: 'credits', accountId: 'acct_1', packId: 'starter' },
    };
    const answer = await h.deliver(stripeEvent('payment_intent.succeeded', intent));
    expect(answer).toMatchObject({ status: 200, body: { status: 'ignored', workflowId: null } });
  });

  it('when the currency paid differs, or the intent names another top-up, then the rule refuses it', () => {
    const asked = {
      id: 'topup_1',
      accountId: 'acct_1',
      credits: 100,
      amountCents: 900,
      currency: 'usd',
      paymentIntentId: 'pi_1',
    };
    const intent = summarizePaymentIntent({
      id: 'pi_1',
      object: 'payment_intent',
      status: 'succeeded',
      amount: 900,
      amount_received: 900,
      currency: 'EUR',
      livemode: false,
      customer: 'cus_1',
      metadata: { purpose: 'topup', topupId: 'topup_1', accountId: 'acct_1' },
    });
    expect(checkTopupPayment(asked, intent, false)).toMatchObject({
      kind: 'refuse',
      code: 'currency_mismatch',
    });
    expect(checkTopupPayment(asked, { ...intent, currency: 'usd' }, false)).toEqual({ kind: 'grant' });
    expect(checkTopupPayment(asked, { ...intent, currency: 'usd', topupId: 'topup_2' }, false)).toMatchObject(
      {
        code: 'topup_mismatch',
      },
    );
    expect(checkTopupPayment(asked, { ...intent, currency: 'usd' }, true)).toMatchObject({
      code: 'livemode_mismatch',
    });
  });

  it('when checkouts save the card, then one Stripe customer is created and remembered for the account', async () => {
    const account = await h.newAccount();
    const customersBefore = stripe.requests.filter(
      (r) => r.method === 'POST' && r.path === '/v1/customers',
    ).length;
    for (const key of ['a', 'b']) {
      const answer = await h.api('POST', '/v1/checkout/sessions', {
        accountId: account.id,
        credits: 200,
        successUrl: SUCCESS_URL,
        cancelUrl: CANCEL_URL,
        savePaymentMethod: key === 'a' || key === 'b',
      });
      expect(answer.status).toBe(201);
    }
    const customers = stripe.requests.filter((r) => r.method === 'POST' && r.path === '/v1/customers');
    expect(customers.length - customersBefore).toBe(1);
    const sessions = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === account.id);
    expect(sessions.map((r) => r.form['payment_intent_data[setup_future_usage]'])).toEqual([
      'off_session',
      'off_session',
    ]);
    const [{ stripe_customer_id: customerId } = { stripe_customer_id: null }] = await h.sql<
      { stripe_customer_id: string | null }[]
    >`SELECT stripe_customer_id FROM accounts WHERE id = ${account.id}`;
    expect(sessions.map((r) => r.form.customer)).toEqual([customerId, customerId]);
  });

  it('when the settings are invalid, then a stable error code and nothing is saved', async () => {
    const account = await h.newAccount();
    const put = (body: Record<string, unknown>) =>
      h.api('PUT', `/v1/accounts/${account.id}/auto-topup`, body);
    const base = { enabled: true, threshold: 100, monthlyCapCents: 10_000 };
    expect((await put({ ...base, packId: 'starter', credits: 200 })).body.error.code).toBe('invalid_request');
    expect((await put({ ...base, packId: 'no-such-pack' })).body.error.code).toBe('pack_not_found');
    expect((await put({ ...base, packId: 'starter', monthlyCapCents: 100 })).body.error.code).toBe(
      'invalid_request',
    );
    expect((await put({ ...base, packId: 'starter', maxConsecutiveFailures: 0 })).status).toBe(400);
    const read = await h.api('GET', `/v1/accounts/${account.id}/auto-topup`);
    expect(read).toMatchObject({ status: 404, body: { error: { code: 'auto_topup_not_set' } } });
  });

  /** Keeps the run's history as test/histories/<name>.json for the replay test. */
  function saveHistory(name: string, workflowId: string) {
    const history = execFileSync(
      findTemporalCli(),
      [
        'workflow',
        'show',
        '--workflow-id',
        workflowId,
        '--address',
        h.config.temporal.address,
        '--output',
        'json',
      ],
      { encoding: 'utf8' },
    );
    writeFileSync(path.join(__dirname, '..', 'workflows', 'histories', `${name}.json`), history);
  }

  describe('against an unlucky Stripe: a missed event, a lost answer, a refused key, odd settings, a new month', () => {
    let reconcile: ReconcileWorker;
    beforeAll(async () => {
      reconcile = await startReconcileWorker(h, stripe);
    });
    afterAll(async () => {
      await reconcile?.stop();
    });
    const nowSeconds = () => Math.floor(Date.now() / 1000);

    it("when a top-up's success event is missed, then reconcile hands it to the waiting top-up, which grants once; later deliveries and runs grant nothing more", async () => {
      const account = await accountWithCard({ credits: 400, threshold: 300 });
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
      await h.sql`UPDATE accounts SET stripe_customer_id = 'cus_retried1' WHERE id = ${account.id}`;
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
        customerId: 'cus_retried1',
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
      const account = await accountWithCard({ credits: 400, threshold: 300 });
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
      for (const body of odd)
        expect({ body, status: (await put(body)).status }).toEqual({ body, status: 400 });
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
      const account = await accountWithCard({
        credits: 400,
        threshold: 300,
        monthlyCapCents: STARTER.amount,
      }); // one top-up a month
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

    it("when the settings' currency changes mid-month, then only the month's top-ups in the new currency count against its cap", async () => {
      const account = await accountWithCard({
        credits: 400,
        threshold: 300,
        monthlyCapCents: STARTER.amount,
      }); // one top-up a month
      await debit(account.id, 150); // 250
      const first = await nthTopup(account.id, 1);
      const intent = await waitUntil(() => stripe.paymentIntentsOfTopup(first)[0], { what: 'the intent' });
      await h.deliver(stripeEvent('payment_intent.succeeded', intent));
      expect((await resultOf(first)).stage).toBe('succeeded'); // 350, and 9.00 USD used

      // The same cap, now in euros: nothing was charged in euros this month.
      const euros = await h.api('PUT', `/v1/accounts/${account.id}/auto-topup`, {
        enabled: true,
        threshold: 300,
        packId: 'euro-starter',
        monthlyCapCents: 900,
      });
      expect(euros.body).toMatchObject({ currency: 'eur', amountCents: 900, usedThisMonthCents: 0 });
      await debit(account.id, 100); // 250
      const second = await nthTopup(account.id, 2);
      const next = await waitUntil(() => stripe.paymentIntentsOfTopup(second)[0], { what: 'the intent' });
      expect(next).toMatchObject({ currency: 'eur', amount: 900 });
      await h.deliver(stripeEvent('payment_intent.succeeded', next));
      expect((await resultOf(second)).stage).toBe('succeeded'); // 350

      // The euro cap is reached now; the dollars of the month still do not count in it.
      await debit(account.id, 100); // 250
      const settings = await h.api('GET', `/v1/accounts/${account.id}/auto-topup`);
      expect(settings.body).toMatchObject({
        currency: 'eur',
        usedThisMonthCents: 900,
        lastSkippedReason: 'the monthly cap is reached',
      });
      expect(await topupsOf(account.id)).toHaveLength(2);
    });
  });
});
