import { condition, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities, InvoiceCheckResult } from '../activities';
import {
  invoiceStatusQuery,
  type InvoiceWorkflowInput,
  type InvoiceWorkflowResult,
  type InvoiceWorkflowStatus,
} from '../domain/invoice-workflow-contract';
import { reviewSignal, type ReviewDecision } from '../domain/purchase-workflow-contract';
import { databaseActivityOptions } from './activity-options';
import { trackStage } from './billing-stage';
import { deliverEmail } from './email-delivery';
import { recheckUntil } from './recheck';

const db = proxyActivities<Activities>(databaseActivityOptions);

type Held = Extract<InvoiceCheckResult, { outcome: 'hold' }>;

/**
 * One Stripe event about a subscription invoice. `invoice.paid` grants the plan's credits for
 * the period exactly once (the ledger key is the invoice ID, whatever number of events describe
 * it), expiring the unused credits of ended periods when the plan does not roll them over, then
 * emails the receipt. `invoice.payment_failed` sends the dunning email, once per invoice. Both
 * wait for the checkout session that links the subscription to an account if it has not
 * arrived yet; a paid invoice that cannot be checked waits for an operator's `review` signal.
 */
export async function invoiceWorkflow(input: InvoiceWorkflowInput): Promise<InvoiceWorkflowResult> {
  const { invoice } = input;
  const { workflowId } = workflowInfo();
  const status: InvoiceWorkflowStatus = {
    stage: 'checking',
    invoiceId: invoice.id,
    subscriptionId: invoice.subscriptionId,
    accountId: null,
    credits: null,
    expiredCredits: 0,
    reasonCode: null,
    reason: null,
    ledgerEntryId: null,
    email: 'not_applicable',
  };
  const { enter, account } = trackStage(status, invoiceStatusQuery);
  let pendingDecision: ReviewDecision | null = null;
  setHandler(reviewSignal, (decision) => {
    if (status.stage === 'held_for_review' && pendingDecision === null) pendingDecision = decision;
  });
  const finish = (stage: InvoiceWorkflowStatus['stage']): InvoiceWorkflowResult => {
    enter(stage);
    return status;
  };

  if (input.action === 'dunning') return dunning();

  let check = await db.checkInvoice({ invoice, workflowId });
  if (check.outcome === 'await_link') {
    enter('awaiting_link');
    const linked = await recheckUntil(async () => {
      const again = await db.checkInvoice({ invoice, workflowId });
      return again.outcome === 'await_link' ? null : again;
    }, input.timeouts.link);
    check = linked ?? (await db.checkInvoice({ invoice, workflowId, linkTimedOut: true }));
  }
  while (check.outcome === 'hold') {
    const decided = await review(check);
    if (decided === null) return status;
    check = decided;
  }
  if (check.outcome === 'already_granted') {
    status.ledgerEntryId = check.ledgerEntryId;
    return finish('already_granted');
  }
  if (check.outcome !== 'grant') {
    status.reason =
      check.outcome === 'no_grant' ? check.reason : 'the subscription is not linked to an account';
    return finish('not_granted');
  }

  const { grant } = check;
  account(grant.accountId);
  status.credits = grant.credits;
  enter('granting');
  const granted = await db.grantInvoice(grant);
  status.ledgerEntryId = granted.ledgerEntryId;
  status.expiredCredits = granted.expiredCredits;
  if (!granted.applied) return finish('already_granted');
  if (granted.receiptKey === null) {
    status.reason = 'a later period had already started: its credits expired at once';
    return finish('completed');
  }
  enter('sending_receipt');
  status.email = 'pending';
  status.email = await deliverEmail(granted.receiptKey, input.timeouts.receipt);
  return finish(status.email === 'sent' ? 'completed' : 'completed_receipt_failed');

  /** Waits for an operator; an approval checks again with the reviewer's say. Null: closed. */
  async function review(held: Held): Promise<InvoiceCheckResult | null> {
    status.reasonCode = held.code;
    status.reason = held.reason;
    account(held.accountId);
    enter('held_for_review');
    const decided = await condition(() => pendingDecision !== null, input.timeouts.review);
    const decision = pendingDecision;
    pendingDecision = null;
    if (!decided || decision === null || decision.decision === 'reject') {
      const closed = decided && decision ? 'rejected' : 'review_expired';
      const reason =
        decision === null
          ? `no review decision within ${input.timeouts.review}`
          : `rejected by ${decision.reviewer}: ${decision.note ?? held.reason}`;
      await db.closeInvoice({
        invoice,
        accountId: held.accountId,
        workflowId,
        status: closed,
        reasonCode: held.code,
        reason,
      });
      status.reason = reason;
      enter(closed);
      return null;
    }
    return db.checkInvoice({
      invoice,
      workflowId,
      linkTimedOut: true,
      approval: {
        reviewer: decision.reviewer,
        ...(decision.credits === undefined ? {} : { credits: decision.credits }),
      },
    });
  }

  async function dunning(): Promise<InvoiceWorkflowResult> {
    let failure = await db.recordInvoiceFailure({ invoice, workflowId });
    if (failure.outcome === 'await_link') {
      enter('awaiting_link');
      failure =
        (await recheckUntil(async () => {
          const again = await db.recordInvoiceFailure({ invoice, workflowId });
          return again.outcome === 'await_link' ? null : again;
        }, input.timeouts.link)) ?? failure;
    }
    if (failure.outcome === 'await_link') {
      status.reason = 'no checkout session linked the subscription to an account in time';
      return finish('unlinked');
    }
    account(failure.accountId);
    if (failure.outcome === 'already_paid') return finish('already_paid');
    enter('sending_dunning');
    status.email = 'pending';
    status.email = await deliverEmail(failure.emailKey, input.timeouts.receipt);
    return finish(status.email === 'sent' ? 'dunning_sent' : 'dunning_failed');
  }
}
