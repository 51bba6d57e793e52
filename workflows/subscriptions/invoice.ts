import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createInvoiceActivities } from '../../activities/subscriptions/invoice';
import {
  invoiceStatusQuery,
  type InvoiceCheckResult,
  type InvoiceWorkflowInput,
  type InvoiceWorkflowResult,
  type InvoiceWorkflowStatus,
} from './contract';
import { databaseActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';
import { deliverEmail } from '../email/delivery';
import { recheckWhile } from '../shared/recheck';
import { rejectionReason, reviewDesk, reviewExpiredReason } from '../reviews/review-desk';

type InvoiceActivities = ReturnType<typeof createInvoiceActivities>;

const invoices = proxyActivities<InvoiceActivities>(databaseActivityOptions);

type Held = Extract<InvoiceCheckResult, { outcome: 'hold' }>;

const awaitsLink = (answer: { outcome: string }) => answer.outcome === 'await_link';

/**
 * One Stripe event about a subscription invoice. `invoice.paid` grants the plan's credits for
 * the period exactly once (the ledger key is the invoice ID, whatever number of events describe
 * it) as a grant that expires at the period's end when the plan does not roll credits over, then
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
    reasonCode: null,
    reason: null,
    ledgerEntryId: null,
    email: 'not_applicable',
  };
  const { enter, account } = trackStage(status, invoiceStatusQuery);
  const desk = reviewDesk(() => status.stage === 'held_for_review');
  const finish = (stage: InvoiceWorkflowStatus['stage']): InvoiceWorkflowResult => {
    enter(stage);
    return status;
  };

  if (input.action === 'dunning') return dunning();

  let check = await invoices.checkInvoice({ invoice, workflowId });
  if (awaitsLink(check)) {
    enter('awaiting_link');
    const checkAgain = () => invoices.checkInvoice({ invoice, workflowId });
    check = await recheckWhile(check, awaitsLink, checkAgain, input.timeouts.link);
    if (awaitsLink(check)) check = await invoices.checkInvoice({ invoice, workflowId, linkTimedOut: true });
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
  const granted = await invoices.grantInvoice(grant);
  status.ledgerEntryId = granted.ledgerEntryId;
  if (!granted.applied) return finish('already_granted');
  if (granted.receiptKey === null) {
    status.reason = 'a later period had already started: no receipt for this one';
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
    const decision = await desk.decision(input.timeouts.review);
    if (decision === null || decision.decision === 'reject') {
      const closed = decision === null ? 'review_expired' : 'rejected';
      const reason =
        decision === null
          ? reviewExpiredReason(input.timeouts.review)
          : rejectionReason(decision, held.reason);
      await invoices.closeInvoice({
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
    return invoices.checkInvoice({
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
    const record = () => invoices.recordInvoiceFailure({ invoice, workflowId });
    let failure = await record();
    if (awaitsLink(failure)) {
      enter('awaiting_link');
      failure = await recheckWhile(failure, awaitsLink, record, input.timeouts.link);
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
