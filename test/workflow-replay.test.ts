import { Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { invoiceStatusQuery } from '../domain/invoice-workflow-contract';
import { reviewSignal, statusQuery } from '../domain/purchase-workflow-contract';
import { findTemporalCli } from '../scripts/temporal-cli';
import { charge, dispute, subscription } from '../scripts/stripe-billing-events';
import {
  checkoutSession,
  stripeEvent,
  type CheckoutSessionOptions,
  type StripeEvent,
} from '../scripts/stripe-events';
import { grantedPurchase, newSubscription } from './support/billing';
import { startHarness, type Harness } from './support/harness';
import { installQuietRuntime } from './support/quiet-runtime';
import { sleep, waitUntil } from './support/wait';

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
      // The CLI's JSON export is the format Temporal documents for replay.
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
  });

describe('workflow replay', () => {
  it('when recorded histories are replayed against the current workflow code, then none is non-deterministic', async () => {
    installQuietRuntime();
    const files = readdirSync(HISTORIES_DIR).filter((file) => file.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(18);
    const histories = files.map((file) => ({
      workflowId: file,
      history: JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as unknown,
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE ?? '' } },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
  });
});
