import { Context } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import { randomUUID } from 'node:crypto';
import type { createEmailActivities } from '../../activities/email/email';
import type { createPurchaseActivities } from '../../activities/purchases/purchase';
import { errors } from '../../domain/errors';
import { purchaseGrantFor } from '../../domain/purchase-rules';
import { checkoutSession } from '../../stripe/fixtures/index';
import { summarizeCheckoutSession } from '../../stripe/objects';
import { PURCHASE_WORKFLOW_TYPE, type CheckedPurchase } from '../../workflows/purchases/contract';
import type { purchaseWorkflow } from '../../workflows/purchases/purchase';
import { StubActivities } from '../support/stub-activities';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createPurchaseActivities> & ReturnType<typeof createEmailActivities>;

/** RECEIPT_DEADLINE's default: how long a receipt keeps being retried. */
const RECEIPT_DEADLINE = '3 days';
/** The longest pause between two tries of the receipt activity (its retry policy). */
const LONGEST_PAUSE_MS = 10 * 60_000;

/**
 * A receipt never blocks money: tried once inside the workflow task that granted, then retried
 * with backoff until RECEIPT_DEADLINE, and recorded failed when it cannot be delivered, with the
 * credits left granted. Stub activities on the time-skipping server.
 */
describe('receipt delivery (stub activities, time skipped)', () => {
  const stubs = new StubActivities<Activities>();
  let tier: WorkflowTier;

  beforeAll(async () => {
    tier = await startWorkflowTier(stubs);
  });
  afterAll(async () => {
    await tier?.close();
  });

  /** A valid purchase, granted by the local activity that validated it. */
  function grantedPurchase() {
    const workflowId = `evt_${randomUUID()}`;
    const accountId = `acct_${randomUUID()}`;
    const session = summarizeCheckoutSession(checkoutSession({ accountId, packId: 'starter' }));
    const grant = purchaseGrantFor(
      session,
      { accountId, packId: 'starter', packName: 'Starter', credits: 100 },
      workflowId,
    );
    const receiptKey = `receipt:${session.id}`;
    const checked: CheckedPurchase = {
      validation: { outcome: 'valid', grant },
      granted: { ledgerEntryId: 12, balanceAfter: 100, applied: true, receiptKey, grantId: 3 },
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
            reviewTimeout: '7 days',
            receiptDeadline: RECEIPT_DEADLINE,
          },
        ],
      });
    return { workflowId, session, receiptKey, checked, start };
  }
  const inTask = () => Context.current().info.isLocal;

  it('when SMTP answers the first try, then the purchase completes with the receipt sent in the task that granted it', async () => {
    const { workflowId, receiptKey, checked, start } = grantedPurchase();
    const tries: boolean[] = [];
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve(checked),
      sendReceipt: () => {
        tries.push(inTask());
        return Promise.resolve({ status: 'sent' });
      },
    });
    const handle = await start();

    expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    expect(run.calls('sendReceipt')).toEqual([{ receiptKey }]);
    expect(tries).toEqual([true]);
    expect(run.names()).toEqual(['validateAndGrantPurchase', 'sendReceipt']);
  });

  it('when the first try stalls, then the retried receipt activity delivers it', async () => {
    const { workflowId, receiptKey, checked, start } = grantedPurchase();
    const tries: boolean[] = [];
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve(checked),
      sendReceipt: () => {
        tries.push(inTask());
        return inTask() ? Promise.reject(errors.smtpTryStalled()) : Promise.resolve({ status: 'sent' });
      },
    });
    const handle = await start();

    expect(await handle.result()).toMatchObject({ stage: 'completed', receipt: 'sent' });
    expect(tries).toEqual([true, false]);
    expect(run.calls('sendReceipt')).toEqual([{ receiptKey }, { receiptKey }]);
    expect(run.calls('recordReceiptFailure')).toEqual([]);
  });

  it('when SMTP stays down past RECEIPT_DEADLINE, then the receipt is given up at the deadline and recorded failed, and the credits stay granted', async () => {
    const { workflowId, session, receiptKey, checked, start } = grantedPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve(checked),
      sendReceipt: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:25')),
      recordReceiptFailure: () => Promise.resolve(),
    });
    const startedAt = await tier.env.currentTimeMs();
    const handle = await start();

    expect(await handle.result()).toEqual({
      stage: 'completed_receipt_failed',
      checkoutSessionId: session.id,
      credits: 100,
      ledgerEntryId: 12,
      receipt: 'failed',
      reasonCode: null,
    });
    const elapsed = (await tier.env.currentTimeMs()) - startedAt;
    // Retried until the deadline (less the last pause, which would pass it), and no longer.
    expect(elapsed).toBeGreaterThan(msToNumber(RECEIPT_DEADLINE) - LONGEST_PAUSE_MS);
    expect(run.calls('sendReceipt').length).toBeGreaterThan(10);
    expect(run.calls('recordReceiptFailure')).toEqual([
      { receiptKey, reason: expect.stringMatching(/ECONNREFUSED/) },
    ]);
    // Nothing takes the credits back: the grant is the only movement.
    expect(run.names().filter((name) => name !== 'sendReceipt')).toEqual([
      'validateAndGrantPurchase',
      'recordReceiptFailure',
    ]);
  });

  it('when SMTP refuses the address for good, then the receipt is recorded failed at once, without retries', async () => {
    const { workflowId, receiptKey, checked, start } = grantedPurchase();
    const run = stubs.forRun(workflowId, {
      validateAndGrantPurchase: () => Promise.resolve(checked),
      sendReceipt: () => Promise.reject(errors.smtpRefused('550 5.1.1 no such user')),
      recordReceiptFailure: () => Promise.resolve(),
    });
    const handle = await start();

    expect(await handle.result()).toMatchObject({ stage: 'completed_receipt_failed', receipt: 'failed' });
    expect(run.calls('sendReceipt')).toHaveLength(1);
    expect(run.calls('recordReceiptFailure')).toEqual([
      {
        receiptKey,
        reason: 'SmtpPermanentError: The SMTP server refused the email: 550 5.1.1 no such user',
      },
    ]);
  });
});
