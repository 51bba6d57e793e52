import { defaultPayloadConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { payloadKeyId } from '../../config/payload-codec';
import { invoiceStatusQuery } from '../../workflows/subscriptions/contract';
import { statusQuery } from '../../workflows/purchases/contract';
import { decideUpdate, reviewSignal, type ReviewDecision } from '../../workflows/reviews/contract';
import { findTemporalCli } from '../../scripts/temporal-cli';
import {
  charge,
  checkoutSession,
  dispute,
  stripeEvent,
  subscription,
  type CheckoutSessionOptions,
  type StripeEvent,
} from '../../stripe/fixtures/index';
import { debitCredits } from '../../credits/index';
import { emailKeys } from '../../email/templates';
import type { MaintenanceInput } from '../../workflows/maintenance/contract';
import { grantDirectly, grantedPurchase, heldInvoice, newSubscription } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';
import { payloadsOf, readableText, spelledIn } from '../support/history-privacy';
import { runWebhookDispatcherToTheEnd } from '../support/outbound-webhook-history';
import { recordedReconcileRun } from '../support/reconcile';
import { testDataConverter } from '../support/payload-keys';
import { installQuietRuntime } from '../support/quiet-runtime';
import { sleep, waitUntil } from '../support/wait';

/**
 * Histories recorded from real runs are replayed against the current workflow code, so a change
 * that would break executions already running in production fails here. Record new ones with
 * `npm run record:histories` after an intended, compatible workflow change (or a versioned one).
 */
const HISTORIES_DIR = path.join(__dirname, 'histories');
const recording = process.env.RECORD_HISTORIES === '1';

// Recording is a tool, not a test: it exists only when asked for.
if (recording)
  describe('recording workflow histories', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness();
      mkdirSync(HISTORIES_DIR, { recursive: true });
    });
    afterAll(async () => {
      await h?.close();
    });

    async function record(
      name: string,
      options: Omit<CheckoutSessionOptions, 'accountId'>,
      review?: 'approve' | 'reject',
    ) {
      const account = await h.newAccount();
      const event = stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter', ...options }),
      );
      await h.deliver(event);
      const handle = h.temporal.workflow.getHandle(event.id);
      if (review) {
        await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review');
        await handle.signal(reviewSignal, { decision: review, reviewer: 'recorder' });
      }
      await saveHistory(`purchase-${name}`, event.id);
    }

    /** Waits for the run to finish, then keeps its history as test/histories/<name>.json. */
    async function saveHistory(name: string, workflowId: string) {
      await h.temporal.workflow.getHandle(workflowId).result();
      // The CLI's JSON export is the format Temporal documents for replay. Without codec flags it
      // keeps the payloads as the server stores them: encrypted with the test key.
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
      writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), history);
    }

    it('records the main paths', async () => {
      await record('granted', {});
      await record('awaiting-payment', { paymentStatus: 'unpaid' });
      await record('held-approved', { amountTotal: 1 }, 'approve');
      await record('held-rejected', { currency: 'eur' }, 'reject');
      h.smtp.refuseRecipients(550);
      await record('receipt-refused', {});
      h.smtp.refuseRecipients(null);
    });

    it('records the subscription, invoice, refund, dispute and closed-checkout paths', async () => {
      const started = await newSubscription(h, 'basic');
      const [link, created, paid] = started.startEvents() as [StripeEvent, StripeEvent, StripeEvent];
      // The invoice first: it waits for the link, with timers in its history.
      await h.deliver(paid);
      await sleep(300);
      await h.deliver(link);
      await h.deliver(created);
      await saveHistory('invoice-awaiting-link', paid.id);
      await saveHistory('subscription-linked', link.id);
      await saveHistory('subscription-synced', created.id);
      const dunning = stripeEvent('invoice.payment_failed', started.renewal(1, { status: 'open' }));
      await h.deliver(dunning);
      await saveHistory('invoice-dunning', dunning.id);
      const renewal = stripeEvent('invoice.paid', started.renewal(1));
      await h.deliver(renewal);
      await saveHistory('invoice-renewal-granted', renewal.id);
      const ended = stripeEvent(
        'customer.subscription.deleted',
        subscription({ id: started.subscriptionId, customerId: started.customerId, status: 'canceled' }),
        { created: Math.floor(Date.now() / 1000) + 60 },
      );
      await h.deliver(ended);
      await saveHistory('subscription-ended-notice', ended.id);
      const unknownPlan = stripeEvent('invoice.paid', started.renewal(2, { priceId: 'price_retired_plan' }));
      await h.deliver(unknownPlan);
      const held = h.temporal.workflow.getHandle(unknownPlan.id);
      await waitUntil(async () => (await held.query(invoiceStatusQuery)).stage === 'held_for_review');
      await held.signal(reviewSignal, { decision: 'approve', reviewer: 'recorder', credits: 10 });
      await saveHistory('invoice-held-approved', unknownPlan.id);

      const purchase = await grantedPurchase(h, 'scale');
      const refund = purchase.refunded(3000);
      await h.deliver(refund);
      await saveHistory('refund-applied', refund.id);
      const object = (status: string) =>
        dispute({
          chargeId: purchase.chargeId,
          paymentIntentId: purchase.paymentIntentId,
          status,
          id: 'dp_recorded',
        });
      const opened = stripeEvent('charge.dispute.created', object('needs_response'));
      await h.deliver(opened);
      await saveHistory('dispute-opened', opened.id);
      const won = stripeEvent('charge.dispute.closed', object('won'));
      await h.deliver(won);
      await saveHistory('dispute-won', won.id);

      const account = await h.newAccount();
      const session = checkoutSession({ accountId: account.id, packId: 'starter', paymentStatus: 'unpaid' });
      const early = stripeEvent(
        'charge.refunded',
        charge({ paymentIntentId: session.payment_intent as string, amountRefunded: 900 }),
      );
      await h.deliver(early);
      await sleep(300);
      const failed = stripeEvent('checkout.session.async_payment_failed', session);
      await h.deliver(failed);
      await saveHistory('checkout-payment-failed', failed.id);
      await saveHistory('refund-purchase-not-granted', early.id);
      const expired = stripeEvent(
        'checkout.session.expired',
        checkoutSession({ accountId: account.id, packId: 'growth' }),
      );
      await h.deliver(expired);
      await saveHistory('checkout-expired', expired.id);
    });

    it('records review decisions made as the decide update, a grant the ledger refused, and a malformed signal dropped', async () => {
      /** A purchase delivered and waiting in held_for_review. */
      async function held(options: Omit<CheckoutSessionOptions, 'accountId'>, accountId?: string) {
        const account = accountId ?? (await h.newAccount()).id;
        const event = stripeEvent(
          'checkout.session.completed',
          checkoutSession({ accountId: account, packId: 'starter', ...options }),
        );
        await h.deliver(event);
        const handle = h.temporal.workflow.getHandle(event.id);
        await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review');
        return { event, handle };
      }
      const decide = (decision: ReviewDecision) => ({ args: [decision] as [ReviewDecision] });

      const approved = await held({ amountTotal: 1 });
      await approved.handle.executeUpdate(
        decideUpdate,
        decide({ decision: 'approve', reviewer: 'recorder', note: 'recorded' }),
      );
      await saveHistory('purchase-held-update-approved', approved.event.id);

      // Paid, refused by the ledger (the balance would pass 2^53 − 1): held; an approval refused
      // again, answered not applied; then a rejection.
      const nearMax = await h.newAccount();
      await grantDirectly(h.sql, nearMax.id, { key: 'near-max', amount: Number.MAX_SAFE_INTEGER - 50 });
      const refused = await held({}, nearMax.id);
      await refused.handle.executeUpdate(decideUpdate, decide({ decision: 'approve', reviewer: 'recorder' }));
      await refused.handle.executeUpdate(decideUpdate, decide({ decision: 'reject', reviewer: 'recorder' }));
      await saveHistory('purchase-ledger-refused-rejected', refused.event.id);

      // A malformed decision sent as the signal is dropped (with the patch marker); the next decides.
      const dropped = await held({ currency: 'eur' });
      const malformed = { decision: 'reject', reviewer: 'recorder', credits: 5 };
      await dropped.handle.signal(reviewSignal, malformed as ReviewDecision);
      await dropped.handle.signal(reviewSignal, { decision: 'reject', reviewer: 'recorder' });
      await saveHistory('purchase-held-malformed-signal-dropped', dropped.event.id);

      const invoice = await heldInvoice(h);
      await invoice.handle.executeUpdate(
        decideUpdate,
        decide({ decision: 'approve', reviewer: 'recorder', credits: 10 }),
      );
      await saveHistory('invoice-held-update-approved', invoice.event.id);
    });

    it('records a webhook dispatcher: a refusal, a retry, a delivery, the endpoint deleted', async () => {
      await saveHistory('webhook-dispatcher-ended', await runWebhookDispatcherToTheEnd(h));
    });

    it('records a reconcile run that starts an event its webhook missed', async () => {
      await saveHistory('reconcile-missed-event', await recordedReconcileRun(h));
    });

    it('records a maintenance run that starts a follow-up left unstarted, and the notice it started', async () => {
      const account = await h.newAccount();
      await grantDirectly(h.sql, account.id, { key: 'fund', amount: 100 });
      await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold: 80 });
      // Straight to the database: a debit whose process died before it started the notice.
      await debitCredits(h.sql, {
        accountId: account.id,
        amount: 30,
        idempotencyKey: 'lost',
        reason: 'work',
      });
      const maintenance = `maintenance-recorded-${account.id}`;
      const input: MaintenanceInput = { followUpAccounts: [account.id] };
      await h.temporal.workflow.execute('maintenanceWorkflow', {
        taskQueue: h.config.temporal.taskQueue,
        workflowId: maintenance,
        args: [input],
      });
      await saveHistory('maintenance-follow-ups', maintenance);
      await saveHistory('low-balance-notice', emailKeys.lowBalance(account.id, 1));
    });

    it('records a maintenance run that sends an expiry notice, and the run that delivers its email', async () => {
      const account = await h.newAccount();
      const { grant } = await grantDirectly(h.sql, account.id, {
        key: 'expiring',
        amount: 100,
        expiresAt: new Date(Date.now() + 2 * 24 * 3600_000),
      });
      const maintenance = `maintenance-expiry-recorded-${account.id}`;
      const input: MaintenanceInput = { followUpAccounts: [account.id], expiryNoticeAccounts: [account.id] };
      await h.temporal.workflow.execute('maintenanceWorkflow', {
        taskQueue: h.config.temporal.taskQueue,
        workflowId: maintenance,
        args: [input],
      });
      await saveHistory('maintenance-expiry-notices', maintenance);
      await saveHistory('credit-expiry-notice', emailKeys.expiryNotice(grant.id));
    });
  });

describe('workflow replay', () => {
  /** Replays every history of `dir` against the current workflow code, with the service's codec. */
  async function replayAll(dir: string): Promise<{ count: number; failures: string[] }> {
    installQuietRuntime();
    const files = readdirSync(dir).filter((file) => file.endsWith('.json'));
    const histories = files.map((file) => ({
      workflowId: file,
      history: JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as unknown,
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
    return { count: files.length, failures };
  }

  it('when recorded histories are replayed against the current workflow code, then none is non-deterministic', async () => {
    const { count, failures } = await replayAll(HISTORIES_DIR);
    expect(count).toBeGreaterThanOrEqual(18);
    expect(failures).toEqual([]);
  });

  it('when histories recorded before payloads were encrypted are replayed with the codec, then they replay too (workflows running at the upgrade go on)', async () => {
    const { count, failures } = await replayAll(path.join(HISTORIES_DIR, 'before-codec'));
    expect(count).toBeGreaterThanOrEqual(2);
    expect(failures).toEqual([]);
  });

  it('when purchase histories recorded before the database steps became local activities are replayed, then they replay (runs open at the upgrade go on)', async () => {
    const { count, failures } = await replayAll(path.join(HISTORIES_DIR, 'before-local-steps'));
    expect(count).toBeGreaterThanOrEqual(5);
    expect(failures).toEqual([]);
  });

  it('when purchase histories recorded before a valid purchase became one workflow task are replayed, then they replay (runs open at the upgrade go on)', async () => {
    const { count, failures } = await replayAll(path.join(HISTORIES_DIR, 'before-single-task'));
    expect(count).toBeGreaterThanOrEqual(5);
    expect(failures).toEqual([]);
  });

  it('when maintenance runs and low-balance notices recorded before follow-ups were started by one activity are replayed, then they replay (runs open at the upgrade go on)', async () => {
    const { count, failures } = await replayAll(path.join(HISTORIES_DIR, 'before-follow-up-activity'));
    expect(count).toBeGreaterThanOrEqual(2);
    expect(failures).toEqual([]);
  });

  it('when a valid purchase runs, then validation, grant and receipt take one workflow task and no activity task, and the stage is recorded once', () => {
    const history = historyFromJSON(
      JSON.parse(readFileSync(path.join(HISTORIES_DIR, 'purchase-granted.json'), 'utf8')),
    );
    const events = history.events ?? [];
    const activities = events.flatMap(
      (event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    const markers = events.flatMap((event) => event.markerRecordedEventAttributes?.markerName ?? []);
    const stages = events.filter(
      (event) =>
        event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.PurchaseStatus,
    );
    expect(activities).toEqual([]);
    // validateAndGrantPurchase, then sendReceipt.
    expect(markers.filter((name) => name === 'core_local_activity')).toHaveLength(2);
    expect(events.filter((event) => event.workflowTaskScheduledEventAttributes)).toHaveLength(1);
    // `completed` only: `sending_receipt` is for a receipt that waits for its retries.
    expect(stages).toHaveLength(1);
  });

  it('when the workflows are bundled, then the bundle holds the SDK and the workflow code only (every module of it is evaluated again for each run)', () => {
    const code = readFileSync(process.env.TEST_WORKFLOW_BUNDLE ?? '', 'utf8');
    const packages = new Set(
      [...code.matchAll(/^\/\*{3}\/ "\.\/node_modules\/((?:@[^/"]+\/)?[^/"]+)\//gm)].map(([, name]) => name),
    );
    // The SDK and what it needs; a schema library (zod) here would build its schemas in every run.
    expect([...packages].sort()).toEqual([
      '@temporalio/common',
      '@temporalio/workflow',
      'long',
      'ms',
      'nexus-rpc',
    ]);
  });

  it('when the replayed histories are listed, then the top-up paths are among them (recorded by test/topups/topup.test.ts)', () => {
    const files = readdirSync(HISTORIES_DIR);
    expect(files).toEqual(expect.arrayContaining(['topup-succeeded.json', 'topup-failed.json']));
  });

  it('when a recorded history is read without the codec, then every payload is ciphertext of the test key, and the codec reads it back', async () => {
    const file = path.join(HISTORIES_DIR, 'purchase-granted.json');
    const raw = readFileSync(file, 'utf8');
    const history = historyFromJSON(JSON.parse(raw));
    const payloads = payloadsOf(history);
    // The input, both local activities' results and the workflow's result, at least.
    expect(payloads.length).toBeGreaterThanOrEqual(4);
    expect(payloads.map(({ payload }) => payloadKeyId(payload))).toEqual(payloads.map(() => 'test-1'));
    // The recorded purchase's customer, in no spelling a reader of the file could decode.
    const readable = `${raw}\n${readableText(history, { withSearchAttributes: true })}`;
    expect(spelledIn(readable, ['customer@example.com'])).toEqual([]);

    const [codec] = testDataConverter().payloadCodecs ?? [];
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    const [input] = await (codec as PayloadCodec).decode(started);
    expect(defaultPayloadConverter.fromPayload(input as Payload)).toMatchObject({
      eventType: 'checkout.session.completed',
      session: { customerEmail: 'customer@example.com', mode: 'payment', paymentStatus: 'paid' },
    });
  });

  describe('the top-up histories', () => {
    it('when the recorded top-up histories are replayed against the workflow as changed here, then they replay', async () => {
      const histories = ['topup-succeeded', 'topup-failed'].map((name) => ({
        workflowId: name,
        history: JSON.parse(readFileSync(path.join(HISTORIES_DIR, `${name}.json`), 'utf8')) as unknown,
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
  });
});
