import { randomUUID } from 'node:crypto';
import type { createMaintenanceActivities } from '../../activities/maintenance/maintenance';
import type { createReversalActivities } from '../../activities/reversals/reversals';
import type { createEmailActivities } from '../../activities/email/email';
import type { createInvoiceActivities } from '../../activities/subscriptions/invoice';
import { charge, invoice, stripeEvent, type StripeEvent } from '../../stripe/fixtures/index';
import { routeStripeEvent } from '../../stripe/event-routes';
import {
  RESERVATION_TIMEOUT_WORKFLOW_TYPE,
  reservationStatusQuery,
  reservationWorkflowId,
} from '../../workflows/maintenance/contract';
import type { reservationTimeoutWorkflow } from '../../workflows/maintenance/maintenance';
import type { InvoiceGrant } from '../../workflows/subscriptions/contract';
import { StubActivities } from '../support/stub-activities';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createReversalActivities> &
  ReturnType<typeof createInvoiceActivities> &
  ReturnType<typeof createMaintenanceActivities> &
  ReturnType<typeof createEmailActivities>;

const DAY_MS = 24 * 3600_000;

/**
 * The waits measured in days, on the time-skipping server with stub activities: a refund waits
 * for the purchase it takes back, an invoice for the checkout session that links its
 * subscription, a hold for its TTL. Started as the webhook starts them (stripe/event-routes.ts).
 * (A refund that waits the whole 3 days for a purchase that never comes: test/purchases/long-waits.test.ts.)
 */
describe('waits of days (stub activities, time skipped)', () => {
  const stubs = new StubActivities<Activities>();
  let tier: WorkflowTier;

  beforeAll(async () => {
    tier = await startWorkflowTier(stubs);
  });
  afterAll(async () => {
    await tier?.close();
  });

  /** Starts what the webhook would start for this event, under the event's ID. */
  async function start(event: StripeEvent) {
    const route = routeStripeEvent(event, {
      purchaseReviewTimeout: '7 days',
      receiptDeadline: '3 days',
    });
    if (route.action !== 'start') throw new Error(`${event.type} starts nothing`);
    return tier.env.client.workflow.start(route.workflowType, {
      taskQueue: tier.taskQueue,
      workflowId: event.id,
      args: route.args,
    });
  }
  /** Skipped time, in days, since `since` (the server's clock). */
  const daysSince = async (since: number) => ((await tier.env.currentTimeMs()) - since) / DAY_MS;

  it('when a refund arrives before its purchase is granted, then it waits, and takes the credits back once the purchase is granted', async () => {
    const refund = stripeEvent(
      'charge.refunded',
      charge({ paymentIntentId: `pi_${randomUUID().replaceAll('-', '')}`, amountRefunded: 450 }),
    );
    const startedAt = await tier.env.currentTimeMs();
    const grantedAt = startedAt + DAY_MS;
    const run = stubs.forRun(refund.id, {
      applyRefund: async () =>
        (await tier.env.currentTimeMs()) < grantedAt
          ? { outcome: 'purchase_pending' }
          : {
              outcome: 'applied',
              purchaseId: 'cs_paid',
              accountId: 'acct_refunded',
              delta: -50,
              revokedCredits: 50,
              ledgerEntryId: 77,
              balanceAfter: 50,
            },
    });
    const handle = await start(refund);

    expect(await handle.result()).toMatchObject({
      stage: 'applied',
      purchaseId: 'cs_paid',
      accountId: 'acct_refunded',
      delta: -50,
      ledgerEntryId: 77,
    });
    expect(await daysSince(startedAt)).toBeGreaterThanOrEqual(1);
    // Checked again with pauses that grow from a second to ten minutes: at most about a hundred
    // and fifty checks in the day, not one a second.
    const checks = run.calls('applyRefund').length;
    expect(checks).toBeGreaterThan(10);
    expect(checks).toBeLessThan(24 * 6 + 20);
  });

  it('when an invoice is paid before the checkout session that links its subscription, then it waits for the link and grants the period once linked', async () => {
    const paidInvoice = invoice();
    const paid = stripeEvent('invoice.paid', paidInvoice);
    const startedAt = await tier.env.currentTimeMs();
    const linkedAt = startedAt + DAY_MS;
    const grant = (workflowId: string): InvoiceGrant => ({
      invoiceId: paidInvoice.id,
      subscriptionId: 'sub_linked',
      accountId: 'acct_linked',
      planId: 'basic',
      planName: 'Basic',
      credits: 1000,
      rollover: true,
      periodStart: 0,
      periodEnd: 0,
      amountCents: 1900,
      currency: 'usd',
      livemode: false,
      paymentIntentId: null,
      workflowId,
    });
    const run = stubs.forRun(paid.id, {
      checkInvoice: async () =>
        (await tier.env.currentTimeMs()) < linkedAt
          ? { outcome: 'await_link' }
          : { outcome: 'grant', grant: grant(paid.id) },
      grantInvoice: () =>
        Promise.resolve({ ledgerEntryId: 5, applied: true, receiptKey: 'receipt:invoice', grantId: 2 }),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const handle = await start(paid);

    expect(await handle.result()).toMatchObject({
      stage: 'completed',
      accountId: 'acct_linked',
      credits: 1000,
      ledgerEntryId: 5,
      email: 'sent',
    });
    expect(await daysSince(startedAt)).toBeGreaterThanOrEqual(1);
    // Every check before the link was an ordinary one: the link did not time out.
    expect(run.calls('checkInvoice').every((input) => input.linkTimedOut === undefined)).toBe(true);
    expect(run.calls('grantInvoice')).toEqual([grant(paid.id)]);
  });

  it('when a hold of one day is never captured, then its timer releases it a day later', async () => {
    const reservationId = `res_${randomUUID()}`;
    const workflowId = reservationWorkflowId(reservationId);
    const run = stubs.forRun(workflowId, { expireReservation: () => Promise.resolve({ status: 'expired' }) });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await tier.env.client.workflow.start<typeof reservationTimeoutWorkflow>(
      RESERVATION_TIMEOUT_WORKFLOW_TYPE,
      {
        taskQueue: tier.taskQueue,
        workflowId,
        args: [{ accountId: 'acct_hold', reservationId, expiresAtMs: startedAt + DAY_MS }],
      },
    );
    expect(await handle.query(reservationStatusQuery)).toEqual({ stage: 'waiting', status: null });

    expect(await handle.result()).toEqual({ status: 'expired' });
    expect(await daysSince(startedAt)).toBeGreaterThanOrEqual(1);
    expect(run.calls('expireReservation')).toEqual([{ accountId: 'acct_hold', reservationId }]);
    expect(await handle.query(reservationStatusQuery)).toEqual({ stage: 'settled', status: 'expired' });
  });
});
