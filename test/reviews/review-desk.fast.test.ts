import { msToNumber } from '@temporalio/common/lib/time';
import { randomUUID } from 'node:crypto';
import type { createEmailActivities } from '../../activities/email/email';
import type { createPurchaseActivities } from '../../activities/purchases/purchase';
import type { createInvoiceActivities } from '../../activities/subscriptions/invoice';
import { errors } from '../../domain/errors';
import { HOLD_REASONS, purchaseGrantFor } from '../../domain/purchase-rules';
import { checkoutSession, invoice } from '../../stripe/fixtures/index';
import { summarizeInvoice } from '../../stripe/billing-objects';
import { summarizeCheckoutSession } from '../../stripe/objects';
import {
  PURCHASE_WORKFLOW_TYPE,
  statusQuery,
  type PurchaseValidation,
} from '../../workflows/purchases/contract';
import type { purchaseWorkflow } from '../../workflows/purchases/purchase';
import { reviewSignal } from '../../workflows/reviews/contract';
import { INVOICE_WORKFLOW_TYPE, invoiceStatusQuery } from '../../workflows/subscriptions/contract';
import type { invoiceWorkflow } from '../../workflows/subscriptions/invoice';
import { StubActivities } from '../support/stub-activities';
import { waitUntil } from '../support/wait';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createPurchaseActivities> &
  ReturnType<typeof createInvoiceActivities> &
  ReturnType<typeof createEmailActivities>;

const REVIEW_TIMEOUT = '7 days';

/**
 * A payment held for review waits for an operator's `review` signal, for days, with stub
 * activities on the time-skipping server: no decision by the deadline closes it `review_expired`
 * with nothing granted; an approval grants what was sold, in the reviewer's name; a rejection
 * closes it; an approval that cannot grant goes back to the reviewer.
 */
describe('review desk (stub activities, time skipped)', () => {
  const stubs = new StubActivities<Activities>();
  let tier: WorkflowTier;

  beforeAll(async () => {
    tier = await startWorkflowTier(stubs);
  });
  afterAll(async () => {
    await tier?.close();
  });

  /** A purchase whose amount does not match its pack: held, with what approving would grant. */
  function heldPurchase() {
    const workflowId = `evt_${randomUUID()}`;
    const accountId = `acct_${randomUUID()}`;
    const session = summarizeCheckoutSession(
      checkoutSession({ accountId, packId: 'starter', amountTotal: 1 }),
    );
    const proposal = purchaseGrantFor(
      session,
      { accountId, packId: 'starter', packName: 'Starter', credits: 100 },
      workflowId,
    );
    const held: PurchaseValidation = {
      outcome: 'held',
      reasonCode: 'amount_mismatch',
      reason: HOLD_REASONS.amount_mismatch,
      proposal,
    };
    const start = () =>
      tier.env.client.workflow.start<typeof purchaseWorkflow>(PURCHASE_WORKFLOW_TYPE, {
        taskQueue: tier.taskQueue,
        workflowId,
        args: [
          {
            eventId: workflowId,
            eventType: 'checkout.session.completed',
            session,
            reviewTimeout: REVIEW_TIMEOUT,
            receiptDeadline: '3 days',
          },
        ],
      });
    return { workflowId, accountId, session, proposal, held, start };
  }
  const granted = (checkoutSessionId: string) => ({
    ledgerEntryId: 90,
    balanceAfter: 100,
    applied: true,
    receiptKey: `receipt:${checkoutSessionId}`,
    grantId: 9,
  });
  const heldStage = async (handle: { query: (q: typeof statusQuery) => Promise<{ stage: string }> }) =>
    waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
      what: 'the purchase held for review',
    });

  it('when nobody decides on a held purchase, then it is still held after 6 days and closes review_expired at 7, with nothing granted', async () => {
    const { workflowId, session, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      closePurchase: () => Promise.resolve(),
    });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await start();
    await heldStage(handle);
    await tier.env.sleep('6 days');
    expect(await handle.query(statusQuery)).toMatchObject({ stage: 'held_for_review', credits: 100 });

    expect(await handle.result()).toEqual({
      stage: 'review_expired',
      checkoutSessionId: session.id,
      credits: 100,
      ledgerEntryId: null,
      receipt: 'not_applicable',
      reasonCode: 'amount_mismatch',
    });
    expect((await tier.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(msToNumber(REVIEW_TIMEOUT));
    expect(run.calls('closePurchase')).toEqual([
      {
        session,
        workflowId,
        status: 'review_expired',
        reasonCode: 'amount_mismatch',
        reason: `no review decision within ${REVIEW_TIMEOUT}`,
      },
    ]);
    expect(run.calls('grantPurchase')).toEqual([]);
  });

  it('when an operator approves a held purchase, then what was sold is granted in the reviewer’s name and the receipt goes out', async () => {
    const { workflowId, session, proposal, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      grantPurchase: () => Promise.resolve(granted(session.id)),
      sendReceipt: () => Promise.resolve({ status: 'sent' }),
    });
    const handle = await start();
    await heldStage(handle);
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops', note: 'paid by wire' });

    expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent', ledgerEntryId: 90 });
    expect(run.calls('grantPurchase')).toEqual([{ ...proposal, approvedBy: 'ops' }]);
    expect(run.calls('sendReceipt')).toEqual([{ receiptKey: `receipt:${session.id}` }]);
    expect(await handle.query(statusQuery)).toMatchObject({
      review: { decision: 'approve', reviewer: 'ops', note: 'paid by wire' },
    });
  });

  it('when an operator rejects a held purchase, then it closes rejected with the reviewer’s reason and nothing is granted', async () => {
    const { workflowId, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      closePurchase: () => Promise.resolve(),
    });
    const handle = await start();
    await heldStage(handle);
    await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops', note: 'chargeback risk' });

    expect(await handle.result()).toMatchObject({ stage: 'rejected', ledgerEntryId: null });
    expect(run.calls('closePurchase')).toEqual([
      expect.objectContaining({ status: 'rejected', reason: 'rejected by ops: chargeback risk' }),
    ]);
    expect(run.calls('grantPurchase')).toEqual([]);
  });

  it('when an approval names an account that does not exist, then the purchase goes back to the reviewer, who can still reject it', async () => {
    const { workflowId, accountId, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      grantPurchase: () => Promise.reject(errors.accountNotFound(accountId)),
      closePurchase: () => Promise.resolve(),
    });
    const handle = await start();
    await heldStage(handle);
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops' });
    await waitUntil(async () => (await handle.query(statusQuery)).reason?.includes('does not exist'), {
      what: 'the approval sent back',
    });
    expect(await handle.query(statusQuery)).toMatchObject({
      stage: 'held_for_review',
      reason: `${HOLD_REASONS.amount_mismatch}; approved, but account ${accountId} does not exist`,
    });
    await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops' });

    expect(await handle.result()).toMatchObject({ stage: 'rejected' });
    // AccountNotFound is final: the grant was tried once, not retried for the option set's days.
    expect(run.calls('grantPurchase')).toHaveLength(1);
  });

  it('when nobody decides on a held invoice, then it closes review_expired after the review timeout, with nothing granted', async () => {
    const workflowId = `evt_${randomUUID()}`;
    const paid = summarizeInvoice(invoice({ priceId: 'price_unknown' }));
    const run = stubs.forRun(workflowId, {
      checkInvoice: () =>
        Promise.resolve({
          outcome: 'hold',
          code: 'plan_unknown',
          reason: 'the price the invoice bills is not a plan of the catalog',
          accountId: 'acct_invoice',
        }),
      closeInvoice: () => Promise.resolve(),
    });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await tier.env.client.workflow.start<typeof invoiceWorkflow>(INVOICE_WORKFLOW_TYPE, {
      taskQueue: tier.taskQueue,
      workflowId,
      args: [
        {
          eventId: workflowId,
          eventType: 'invoice.paid',
          action: 'grant',
          invoice: paid,
          timeouts: { link: '3 days', review: REVIEW_TIMEOUT, receipt: '3 days' },
        },
      ],
    });

    expect(await handle.result()).toMatchObject({
      stage: 'review_expired',
      accountId: 'acct_invoice',
      reasonCode: 'plan_unknown',
      reason: `no review decision within ${REVIEW_TIMEOUT}`,
    });
    expect((await tier.env.currentTimeMs()) - startedAt).toBeGreaterThanOrEqual(msToNumber(REVIEW_TIMEOUT));
    expect(run.calls('closeInvoice')).toEqual([
      expect.objectContaining({ status: 'review_expired', reasonCode: 'plan_unknown', workflowId }),
    ]);
    expect(run.calls('grantInvoice')).toEqual([]);
    expect(await handle.query(invoiceStatusQuery)).toMatchObject({ stage: 'review_expired' });
  });
});
