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
import { WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import type { ReviewDecisionRecord } from '../../db/audit/audit-log';
import { decideUpdate, reviewSignal, type ReviewDecision } from '../../workflows/reviews/contract';
import {
  INVOICE_WORKFLOW_TYPE,
  invoiceStatusQuery,
  type InvoiceWorkflowInput,
} from '../../workflows/subscriptions/contract';
import type { invoiceWorkflow } from '../../workflows/subscriptions/invoice';
import { StubActivities } from '../support/stub-activities';
import { waitUntil } from '../support/wait';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createPurchaseActivities> &
  ReturnType<typeof createInvoiceActivities> &
  ReturnType<typeof createEmailActivities>;

const REVIEW_TIMEOUT = '7 days';

/**
 * A payment held for review waits for an operator's decision (the `decide` update, or the `review`
 * signal), for days, with stub activities on the time-skipping server: no decision by the deadline
 * closes it `review_expired` with nothing granted; an approval grants what was sold, in the
 * reviewer's name; a rejection closes it; an approval that cannot grant goes back to the reviewer.
 * The update's validator refuses what the run cannot take before anything reaches its history,
 * and its answer says what the decision did.
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
  const granted = (checkoutSessionId: string, auditId: number | null = null) => ({
    auditId,
    ledgerEntryId: 90,
    balanceAfter: 100,
    applied: true,
    receiptKey: `receipt:${checkoutSessionId}`,
    grantId: 9,
  });
  /** The input of an invoice workflow for `invoice.paid` of a price no plan has. */
  const invoiceInput = (
    workflowId: string,
    paid = summarizeInvoice(invoice({ priceId: 'price_unknown' })),
  ): InvoiceWorkflowInput => ({
    eventId: workflowId,
    eventType: 'invoice.paid',
    action: 'grant',
    invoice: paid,
    timeouts: { link: '3 days', review: REVIEW_TIMEOUT, receipt: '3 days' },
  });
  const heldStage = async (handle: { query: (q: typeof statusQuery) => Promise<{ stage: string }> }) =>
    waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
      what: 'the purchase held for review',
    });

  it('when nobody decides on a held purchase, then it is still held after 6 days and closes review_expired at 7, with nothing granted', async () => {
    const { workflowId, accountId, session, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      closePurchase: () => Promise.resolve({ auditId: null }),
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
        // Nobody decided: the buyer's purchase closes, and no audit row is written.
        accountId,
        review: null,
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
      closePurchase: () => Promise.resolve({ auditId: null }),
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

  it('when a review signal carries a malformed decision (a rejection with credits), then it is dropped and the next well-formed one decides', async () => {
    const { workflowId, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      closePurchase: () => Promise.resolve({ auditId: null }),
    });
    const handle = await start();
    await heldStage(handle);
    const malformed = { decision: 'reject', reviewer: 'mallory', note: 'ignore me', credits: 5 };
    await handle.signal(reviewSignal, malformed as ReviewDecision);
    await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops', note: 'chargeback risk' });

    expect(await handle.result()).toMatchObject({ stage: 'rejected' });
    expect(run.calls('closePurchase')).toEqual([
      expect.objectContaining({ status: 'rejected', reason: 'rejected by ops: chargeback risk' }),
    ]);
  });

  it('when an approval names an account that does not exist, then the purchase goes back to the reviewer, who can still reject it', async () => {
    const { workflowId, accountId, held, start } = heldPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
      grantPurchase: () => Promise.reject(errors.accountNotFound(accountId)),
      closePurchase: () => Promise.resolve({ auditId: null }),
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

  describe('the decide update', () => {
    // Any JSON, as a caller other than the API may send it: the validator is the check.
    const decide = (handle: WorkflowHandle, decision: Record<string, unknown>) =>
      handle.executeUpdate(decideUpdate, { args: [decision as unknown as ReviewDecision] });
    /** The updates the run accepted, as its history records them (a refused one leaves no trace). */
    const acceptedUpdates = async (workflowId: string) => {
      const { events } = await tier.env.client.workflow.getHandle(workflowId).fetchHistory();
      return (events ?? []).filter((event) => event.workflowExecutionUpdateAcceptedEventAttributes).length;
    };

    it('when an operator approves through the update, then what was sold is granted with the decision’s audit record, and the update answers what it did', async () => {
      const { workflowId, accountId, session, proposal, held, start } = heldPurchase();
      const reviews: (ReviewDecisionRecord | null)[] = [];
      const run = stubs.forRun(workflowId, {
        validateAndGrantPurchase: () =>
          Promise.resolve({ validation: { ...held, buyer: accountId }, granted: null }),
        grantPurchase: (_grant, review) => {
          reviews.push(review ?? null);
          return Promise.resolve(granted(session.id, 7));
        },
        sendReceipt: () => Promise.resolve({ status: 'sent' }),
      });
      const handle = await start();
      await heldStage(handle);

      expect(await decide(handle, { decision: 'approve', reviewer: 'ops', note: 'paid by wire' })).toEqual({
        decision: 'approve',
        applied: true,
        stage: 'sending_receipt',
        credits: 100,
        ledgerEntryId: 90,
        auditId: 7,
        reasonCode: null,
        reason: null,
      });
      expect(run.calls('grantPurchase')).toEqual([{ ...proposal, approvedBy: 'ops' }]);
      expect(reviews).toEqual([
        {
          key: `review:${workflowId}:1`,
          workflowId,
          reviewer: 'ops',
          decision: 'approve',
          note: 'paid by wire',
          credits: null,
          before: {
            stage: 'held_for_review',
            purchaseId: session.id,
            accountId,
            reasonCode: 'amount_mismatch',
            reason: HOLD_REASONS.amount_mismatch,
            credits: 100,
            amountCents: 1,
            currency: 'usd',
          },
        },
      ]);
      expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent' });
    });

    it('when an operator rejects through the update, then the purchase closes with the decision’s audit record and the update answers rejected', async () => {
      const { workflowId, held, start } = heldPurchase();
      const run = stubs.forRun(workflowId, {
        validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
        closePurchase: () => Promise.resolve({ auditId: 11 }),
      });
      const handle = await start();
      await heldStage(handle);

      expect(await decide(handle, { decision: 'reject', reviewer: 'ops', note: 'chargeback risk' })).toEqual({
        decision: 'reject',
        applied: true,
        stage: 'rejected',
        credits: null,
        ledgerEntryId: null,
        auditId: 11,
        reasonCode: null,
        reason: 'rejected by ops: chargeback risk',
      });
      expect(run.calls('closePurchase')).toEqual([
        expect.objectContaining({
          status: 'rejected',
          review: expect.objectContaining({ key: `review:${workflowId}:1`, decision: 'reject' }),
        }),
      ]);
      expect(await handle.result()).toMatchObject({ stage: 'rejected' });
    });

    it('when the ledger refuses the approval’s grant, then the update answers not applied with the reason and audit entry, and the purchase stays held for the next decision', async () => {
      const { workflowId, held, start } = heldPurchase();
      const run = stubs.forRun(workflowId, {
        validateAndGrantPurchase: () => Promise.resolve({ validation: held, granted: null }),
        grantPurchase: () =>
          Promise.resolve({
            refusal: { code: 'balance_out_of_range' as const, reason: 'past 2^53 − 1' },
            auditId: 5,
          }),
        closePurchase: () => Promise.resolve({ auditId: 6 }),
      });
      const handle = await start();
      await heldStage(handle);

      expect(await decide(handle, { decision: 'approve', reviewer: 'ops', note: 'go' })).toMatchObject({
        decision: 'approve',
        applied: false,
        stage: 'held_for_review',
        credits: null,
        ledgerEntryId: null,
        auditId: 5,
        reasonCode: 'balance_out_of_range',
        reason: expect.stringContaining('past 2^53 − 1'),
      });
      expect(await handle.query(statusQuery)).toMatchObject({ stage: 'held_for_review', credits: 100 });
      expect(await decide(handle, { decision: 'reject', reviewer: 'ops' })).toMatchObject({
        applied: true,
        stage: 'rejected',
        auditId: 6,
      });
      expect(run.calls('closePurchase')).toEqual([
        expect.objectContaining({ review: expect.objectContaining({ key: `review:${workflowId}:2` }) }),
      ]);
      expect(await handle.result()).toMatchObject({ stage: 'rejected' });
    });

    it.each([
      ['a malformed decision', { decision: 'maybe', reviewer: 'ops' }, {}, 'InvalidRequest'],
      ['credits with a rejection', { decision: 'reject', reviewer: 'ops', credits: 5 }, {}, 'InvalidRequest'],
      ['no reviewer', { decision: 'approve', reviewer: '' }, {}, 'InvalidRequest'],
      [
        'an approval without credits of a pack the catalog does not know',
        { decision: 'approve', reviewer: 'ops' },
        { proposal: null },
        'ReviewCreditsRequired',
      ],
      [
        'an approval of a purchase nobody is known to have paid for',
        { decision: 'approve', reviewer: 'ops', credits: 10 },
        { proposal: null, buyer: null },
        'ReviewBuyerUnknown',
      ],
    ] as const)(
      'when the update carries %s, then the validator refuses it, nothing reaches the history, and the purchase stays held',
      async (_name, decision, hold, type) => {
        const { workflowId, held, start } = heldPurchase();
        const run = stubs.forRun(workflowId, {
          validateAndGrantPurchase: () =>
            Promise.resolve({ validation: { ...held, ...hold }, granted: null }),
          closePurchase: () => Promise.resolve({ auditId: null }),
        });
        const handle = await start();
        await heldStage(handle);

        await expect(decide(handle, decision)).rejects.toMatchObject({ cause: { type } });
        expect(await acceptedUpdates(workflowId)).toBe(0);
        expect(run.names()).toEqual(['validateAndGrantPurchase']);
        expect((await handle.query(statusQuery)).stage).toBe('held_for_review');
        await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops' });
        await handle.result();
      },
    );

    it('when a run is not held (it waits for its subscription’s link), then the update is refused not_held_for_review with its stage', async () => {
      const workflowId = `evt_${randomUUID()}`;
      stubs.forRun(workflowId, {
        checkInvoice: () => Promise.resolve({ outcome: 'await_link' }),
      });
      const handle = await tier.env.client.workflow.start<typeof invoiceWorkflow>(INVOICE_WORKFLOW_TYPE, {
        taskQueue: tier.taskQueue,
        workflowId,
        args: [invoiceInput(workflowId)],
      });
      await waitUntil(async () => (await handle.query(invoiceStatusQuery)).stage === 'awaiting_link', {
        what: 'the invoice waiting for its link',
      });
      await expect(
        decide(handle, { decision: 'approve', reviewer: 'ops', credits: 5 }),
      ).rejects.toMatchObject({
        cause: { type: 'NotHeldForReview', details: [{ stage: 'awaiting_link' }] },
      });
      expect(await acceptedUpdates(workflowId)).toBe(0);
      await handle.terminate('test over');
    });

    it('when a second decision comes while the first is applied, then it is refused review_in_progress and the first is answered with what it did', async () => {
      const workflowId = `evt_${randomUUID()}`;
      let release: () => void = () => undefined;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const paid = summarizeInvoice(invoice({ priceId: 'price_unknown' }));
      const grant = {
        invoiceId: paid.id,
        subscriptionId: 'sub_1',
        accountId: 'acct_invoice',
        planId: null,
        planName: 'Subscription credits',
        credits: 250,
        rollover: true,
        periodStart: 0,
        periodEnd: 0,
        amountCents: paid.amountPaid,
        currency: paid.currency,
        livemode: false,
        paymentIntentId: null,
        workflowId,
        approvedBy: 'ops',
      };
      const run = stubs.forRun(workflowId, {
        // Held at first; the approval's check waits until the test lets it answer.
        checkInvoice: async (input) => {
          if (!input.approval) {
            return {
              outcome: 'hold',
              code: 'plan_unknown',
              reason: 'the price the invoice bills is not a plan of the catalog',
              accountId: 'acct_invoice',
            };
          }
          await released;
          return { outcome: 'grant', grant };
        },
        grantInvoice: () =>
          Promise.resolve({
            ledgerEntryId: 40,
            applied: true,
            receiptKey: 'receipt:in',
            grantId: 4,
            auditId: 3,
          }),
        sendReceipt: () => Promise.resolve({ status: 'sent' }),
      });
      const handle = await tier.env.client.workflow.start<typeof invoiceWorkflow>(INVOICE_WORKFLOW_TYPE, {
        taskQueue: tier.taskQueue,
        workflowId,
        args: [invoiceInput(workflowId)],
      });
      await waitUntil(async () => (await handle.query(invoiceStatusQuery)).stage === 'held_for_review', {
        what: 'the invoice held',
      });
      const first = await handle.startUpdate(decideUpdate, {
        args: [{ decision: 'approve', reviewer: 'ops', credits: 250 }],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      await waitUntil(() => run.calls('checkInvoice').length === 2, { what: 'the approval being checked' });

      await expect(decide(handle, { decision: 'reject', reviewer: 'other' })).rejects.toMatchObject({
        cause: { type: 'ReviewInProgress' },
      });
      release();
      expect(await first.result()).toEqual({
        decision: 'approve',
        applied: true,
        stage: 'sending_receipt',
        credits: 250,
        ledgerEntryId: 40,
        auditId: 3,
        reasonCode: null,
        reason: null,
      });
      expect(run.calls('grantInvoice')).toEqual([grant]);
      expect(await acceptedUpdates(workflowId)).toBe(1);
      expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 250 });
    });
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
      closeInvoice: () => Promise.resolve({ auditId: null }),
    });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await tier.env.client.workflow.start<typeof invoiceWorkflow>(INVOICE_WORKFLOW_TYPE, {
      taskQueue: tier.taskQueue,
      workflowId,
      args: [invoiceInput(workflowId, paid)],
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
