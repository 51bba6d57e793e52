import { Context } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import type { createEmailActivities } from '../../activities/email/email';
import type { createFollowUpActivities } from '../../activities/topups/follow-ups';
import type { createTopupActivities } from '../../activities/topups/topup';
import { errors } from '../../domain/errors';
import type { PaymentIntentSummary } from '../../stripe/payment-intent';
import {
  LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
  TOPUP_GRANT_RETRIES_PER_RUN,
  TOPUP_GRANT_RETRY_FIRST_PAUSE_MS,
  TOPUP_GRANT_RETRY_LONGEST_PAUSE_MS,
  TOPUP_PAYMENT_EVENT_WAIT,
  TOPUP_WORKFLOW_TYPE,
  topupPaymentSignal,
  topupStatusQuery,
  topupWorkflowId,
} from '../../workflows/topups/contract';
import type { lowBalanceNoticeWorkflow, topupWorkflow } from '../../workflows/topups/topup';
import { StubActivities } from '../support/stub-activities';
import { waitUntil } from '../support/wait';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createTopupActivities> &
  ReturnType<typeof createFollowUpActivities> &
  ReturnType<typeof createEmailActivities>;

/**
 * The top-up workflow's paths, with stub activities on the time-skipping server: a charge that
 * succeeds (by its event, or by asking Stripe after a day without one), a decline, a key Stripe
 * refuses, and a charge whose outcome stays unknown because Stripe cannot be reached.
 */
describe('top-up workflow (stub activities, time skipped)', () => {
  const stubs = new StubActivities<Activities>();
  let tier: WorkflowTier;
  let topups = 0;

  beforeAll(async () => {
    tier = await startWorkflowTier(stubs);
  });
  afterAll(async () => {
    await tier?.close();
  });

  const accountId = 'acct_fast';
  function newTopup() {
    topups += 1;
    const topupId = `topup_${Date.now()}${topups}`;
    return { topupId, workflowId: topupWorkflowId(topupId), paymentIntentId: `pi_${topupId}` };
  }
  const open = {
    outcome: 'open' as const,
    accountId,
    credits: 500,
    amountCents: 1000,
    currency: 'usd',
    paymentIntentId: null,
  };
  const intent = (topupId: string, status = 'succeeded'): PaymentIntentSummary => ({
    id: `pi_${topupId}`,
    status,
    amount: 1000,
    amountReceived: status === 'succeeded' ? 1000 : 0,
    currency: 'usd',
    livemode: false,
    customerId: 'cus_fast',
    topupId,
    accountId,
    failureCode: null,
    failureMessage: null,
  });
  const start = (topupId: string, workflowId: string) =>
    tier.env.client.workflow.start<typeof topupWorkflow>(TOPUP_WORKFLOW_TYPE, {
      taskQueue: tier.taskQueue,
      workflowId,
      args: [{ topupId, accountId }],
    });

  it('when the charge succeeds and its event arrives, then the top-up is granted with that payment and the receipt is sent', async () => {
    const { topupId, workflowId, paymentIntentId } = newTopup();
    const run = stubs.forRun(workflowId, {
      beginTopup: () => Promise.resolve(open),
      requestTopupPayment: () => Promise.resolve({ kind: 'submitted', paymentIntentId }),
      grantTopup: () =>
        Promise.resolve({
          outcome: 'granted',
          ledgerEntryId: 41,
          balanceAfter: 520,
          receiptKey: `receipt:${topupId}`,
          applied: true,
        }),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const handle = await start(topupId, workflowId);
    await waitUntil(async () => (await handle.query(topupStatusQuery)).stage === 'awaiting_payment_event');
    const payment = intent(topupId);
    await handle.signal(topupPaymentSignal, {
      eventId: 'evt_paid',
      eventType: 'payment_intent.succeeded',
      paymentIntent: payment,
    });

    expect(await handle.result()).toEqual({
      stage: 'succeeded',
      topupId,
      paymentIntentId,
      failureCode: null,
      ledgerEntryId: 41,
      autoTopupDisabled: false,
      email: 'sent',
    });
    expect(run.calls('grantTopup')).toEqual([{ topupId, workflowId, payment }]);
    expect(run.calls('sendReceipt')).toEqual([{ receiptKey: `receipt:${topupId}` }]);
    expect(run.names()).toEqual(['beginTopup', 'requestTopupPayment', 'grantTopup', 'sendReceipt']);
  });

  it('when no event about the payment comes for a day, then the run asks Stripe for it and grants what Stripe reports', async () => {
    const { topupId, workflowId, paymentIntentId } = newTopup();
    const run = stubs.forRun(workflowId, {
      beginTopup: () => Promise.resolve(open),
      requestTopupPayment: () => Promise.resolve({ kind: 'submitted', paymentIntentId }),
      fetchTopupPayment: () => Promise.resolve(intent(topupId)),
      grantTopup: () =>
        Promise.resolve({
          outcome: 'granted',
          ledgerEntryId: 42,
          balanceAfter: 500,
          receiptKey: null,
          applied: true,
        }),
    });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await start(topupId, workflowId);

    expect(await handle.result()).toMatchObject({
      stage: 'succeeded',
      ledgerEntryId: 42,
      email: 'not_applicable',
    });
    expect(run.calls('fetchTopupPayment')).toEqual([{ paymentIntentId }]);
    expect(run.calls('grantTopup')).toEqual([{ topupId, workflowId, payment: intent(topupId) }]);
    expect((await tier.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(
      msToNumber(TOPUP_PAYMENT_EVENT_WAIT),
    );
  });

  it('when the card is declined, then the failure is recorded with the decline code and a link to pay on-session, and the customer is told', async () => {
    const { topupId, workflowId, paymentIntentId } = newTopup();
    const url = `https://checkout.stripe.test/c/${topupId}`;
    const run = stubs.forRun(workflowId, {
      beginTopup: () => Promise.resolve(open),
      requestTopupPayment: () =>
        Promise.resolve({
          kind: 'declined',
          code: 'card_declined',
          message: 'Your card was declined.',
          paymentIntentId,
        }),
      createTopupRecoveryLink: () => Promise.resolve({ url }),
      failTopup: () => Promise.resolve({ emailKey: `topup-failed:${topupId}`, autoTopupDisabled: true }),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const handle = await start(topupId, workflowId);

    expect(await handle.result()).toEqual({
      stage: 'failed',
      topupId,
      paymentIntentId,
      failureCode: 'card_declined',
      ledgerEntryId: null,
      autoTopupDisabled: true,
      email: 'sent',
    });
    expect(run.calls('failTopup')).toEqual([
      { topupId, workflowId, code: 'card_declined', message: 'Your card was declined.', recoveryUrl: url },
    ]);
    expect(run.calls('sendReceipt')).toEqual([{ receiptKey: `topup-failed:${topupId}` }]);
    expect(run.calls('grantTopup')).toEqual([]);
  });

  it('when Stripe refuses the key, then the charge is not retried and the top-up fails at once as stripe_refused', async () => {
    const { topupId, workflowId } = newTopup();
    const run = stubs.forRun(workflowId, {
      beginTopup: () => Promise.resolve(open),
      requestTopupPayment: () =>
        Promise.reject(errors.stripeRefused('the request', 'Invalid API Key provided')),
      createTopupRecoveryLink: () => Promise.resolve({ url: null }),
      failTopup: () => Promise.resolve({ emailKey: `topup-failed:${topupId}`, autoTopupDisabled: false }),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const handle = await start(topupId, workflowId);

    expect(await handle.result()).toMatchObject({
      stage: 'failed',
      failureCode: 'stripe_refused',
      paymentIntentId: null,
    });
    // Not retried for the activity's day: the refusal is final.
    expect(run.calls('requestTopupPayment')).toHaveLength(1);
    expect(run.calls('failTopup')).toEqual([
      {
        topupId,
        workflowId,
        code: 'stripe_refused',
        message: 'Stripe refused the request: Invalid API Key provided',
        recoveryUrl: null,
      },
    ]);
  });

  it('when Stripe cannot be reached for the whole day of the charge, then the top-up is recorded failed as stripe_unavailable (its outcome unknown), never left open', async () => {
    const { topupId, workflowId } = newTopup();
    const run = stubs.forRun(workflowId, {
      beginTopup: () => Promise.resolve(open),
      requestTopupPayment: () => Promise.reject(new Error('connect ECONNREFUSED api.stripe.com')),
      createTopupRecoveryLink: () => Promise.resolve({ url: null }),
      failTopup: () => Promise.resolve({ emailKey: `topup-failed:${topupId}`, autoTopupDisabled: false }),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await start(topupId, workflowId);

    expect(await handle.result()).toMatchObject({ stage: 'failed', failureCode: 'stripe_unavailable' });
    // Retried with backoff for the activity's whole day (less the last pause, which would pass
    // its deadline) before the run gave up on it.
    expect(run.calls('requestTopupPayment').length).toBeGreaterThan(10);
    expect((await tier.env.currentTimeMs()) - startedAt).toBeGreaterThan((24 * 60 - 5) * 60_000);
    expect(run.calls('failTopup')).toEqual([
      expect.objectContaining({ topupId, code: 'stripe_unavailable', recoveryUrl: null }),
    ]);
    expect(run.calls('grantTopup')).toEqual([]);
  });

  it('when the grant keeps failing after the money was taken, then the run records it owed (never a decline), keeps trying with a growing pause, continuing as new, and grants it once the database takes it', async () => {
    const { topupId, workflowId, paymentIntentId } = newTopup();
    const refusals = TOPUP_GRANT_RETRIES_PER_RUN + 5;
    const granted = {
      outcome: 'granted' as const,
      ledgerEntryId: 77,
      balanceAfter: 600,
      receiptKey: `receipt:${topupId}`,
      applied: true,
    };
    let grants = 0;
    /** When each try was scheduled, in the test server's (skipped) time. */
    const triedAt: number[] = [];
    const run = stubs.forRun(workflowId, {
      beginTopup: () => Promise.resolve(open),
      requestTopupPayment: () => Promise.resolve({ kind: 'submitted', paymentIntentId }),
      // A refusal no retry of the activity changes (it fails at once): only the run's pauses wait.
      grantTopup: () => {
        grants += 1;
        triedAt.push(Context.current().info.scheduledTimestampMs);
        return grants <= refusals
          ? Promise.reject(errors.balanceOutOfRange(accountId))
          : Promise.resolve(granted);
      },
      recordTopupGrantOwed: () =>
        Promise.resolve({ emailKey: `topup-failed:${topupId}`, autoTopupDisabled: false }),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const handle = await start(topupId, workflowId);
    await waitUntil(async () => (await handle.query(topupStatusQuery)).stage === 'awaiting_payment_event');
    await handle.signal(topupPaymentSignal, {
      eventId: 'evt_paid_owed',
      eventType: 'payment_intent.succeeded',
      paymentIntent: intent(topupId),
    });
    await waitUntil(async () => (await handle.query(topupStatusQuery)).stage === 'grant_retrying');
    expect(await handle.query(topupStatusQuery)).toMatchObject({
      stage: 'grant_retrying',
      failureCode: 'grant_failed',
      reason: expect.stringContaining('balance') as unknown,
    });

    const result = await tier.env.client.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({
      stage: 'succeeded',
      paymentIntentId,
      ledgerEntryId: 77,
      failureCode: null,
      email: 'sent',
    });
    expect(run.calls('grantTopup')).toHaveLength(refusals + 1);
    expect(new Set(run.calls('grantTopup').map((call) => JSON.stringify(call)))).toEqual(
      new Set([JSON.stringify({ topupId, workflowId, payment: intent(topupId) })]),
    );
    // Recorded owed once (the customer told it is not finished), never as a failure of the card.
    expect(run.calls('recordTopupGrantOwed')).toEqual([
      { topupId, workflowId, message: expect.stringContaining('balance') as unknown },
    ]);
    expect(run.calls('failTopup')).toEqual([]);
    expect(run.calls('createTopupRecoveryLink')).toEqual([]);
    expect(run.calls('sendReceipt')).toEqual([
      { receiptKey: `topup-failed:${topupId}` },
      { receiptKey: `receipt:${topupId}` },
    ]);
    // The pauses double from the first to the longest, one after each refused try.
    const pauses = triedAt.slice(1).map((at, n) => at - (triedAt[n] as number));
    expect(pauses).toHaveLength(refusals);
    pauses.forEach((pause, n) => {
      const planned = Math.min(TOPUP_GRANT_RETRY_FIRST_PAUSE_MS * 2 ** n, TOPUP_GRANT_RETRY_LONGEST_PAUSE_MS);
      expect({ n, pause: Math.round(pause / 60_000) }).toEqual({ n, pause: planned / 60_000 });
    });
    // A history of its own for each stretch of tries.
    const first = await tier.env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).describe();
    expect(first.status.name).toBe('CONTINUED_AS_NEW');
  });

  it('when a late success cannot be granted either, then its run keeps trying too, and grants it once it can', async () => {
    const { topupId } = newTopup();
    const workflowId = `topup-payment:pi_${topupId}`;
    let grants = 0;
    const run = stubs.forRun(workflowId, {
      grantTopup: () => {
        grants += 1;
        return grants <= 3
          ? Promise.reject(errors.balanceOutOfRange(accountId))
          : Promise.resolve({
              outcome: 'granted',
              ledgerEntryId: 78,
              balanceAfter: 600,
              receiptKey: null,
              applied: true,
            });
      },
      recordTopupGrantOwed: () => Promise.resolve({ emailKey: null, autoTopupDisabled: false }),
    });
    const latePayment = {
      eventId: 'evt_late',
      eventType: 'payment_intent.succeeded',
      paymentIntent: intent(topupId),
    };
    const handle = await tier.env.client.workflow.start<typeof topupWorkflow>(TOPUP_WORKFLOW_TYPE, {
      taskQueue: tier.taskQueue,
      workflowId,
      args: [{ topupId, accountId, latePayment }],
    });

    expect(await handle.result()).toMatchObject({ stage: 'succeeded', ledgerEntryId: 78 });
    expect(run.names()).toEqual([
      'grantTopup',
      'recordTopupGrantOwed',
      'grantTopup',
      'grantTopup',
      'grantTopup',
    ]);
  });

  it('when the top-up row does not exist, then the run ends unknown_topup without charging', async () => {
    const { topupId, workflowId } = newTopup();
    const run = stubs.forRun(workflowId, { beginTopup: () => Promise.resolve({ outcome: 'unknown' }) });
    const handle = await start(topupId, workflowId);

    expect(await handle.result()).toMatchObject({ stage: 'unknown_topup', paymentIntentId: null });
    expect(run.names()).toEqual(['beginTopup']);
  });

  it('when a low-balance notice cannot be delivered (a permanent SMTP refusal), then it is recorded failed at once', async () => {
    const workflowId = `low-balance-${newTopup().topupId}`;
    const run = stubs.forRun(workflowId, {
      queueLowBalanceNotice: () => Promise.resolve(),
      sendReceipt: () => Promise.reject(errors.smtpRefused('550 mailbox unavailable')),
      recordReceiptFailure: () => Promise.resolve(),
    });
    const input = { accountId, emailKey: 'low-balance:1' };
    const handle = await tier.env.client.workflow.start<typeof lowBalanceNoticeWorkflow>(
      LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
      { taskQueue: tier.taskQueue, workflowId, args: [input] },
    );

    expect(await handle.result()).toEqual({ stage: 'failed' });
    expect(run.calls('queueLowBalanceNotice')).toEqual([input]);
    expect(run.calls('sendReceipt')).toHaveLength(1);
    expect(run.calls('recordReceiptFailure')).toEqual([
      {
        receiptKey: 'low-balance:1',
        reason: 'SmtpPermanentError: The SMTP server refused the email: 550 mailbox unavailable',
      },
    ]);
  });
});
