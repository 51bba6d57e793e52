import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createInvoiceActivities } from '../../activities/subscriptions/invoice';
import {
  invoiceStatusQuery,
  type GrantRefusal,
  type InvoiceCheckResult,
  type InvoiceGrantOutcome,
  type InvoiceWorkflowInput,
  type InvoiceWorkflowResult,
  type InvoiceWorkflowStatus,
} from './contract';
import type { ReviewAnswer } from '../reviews/contract';
import { errors } from '../../domain/errors';
import { INVOICE_HOLD_REASONS, type InvoiceHoldCode } from '../../domain/subscription-rules';
import { databaseActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';
import { deliverEmail } from '../email/delivery';
import { recheckWhile } from '../shared/recheck';
import {
  rejectionReason,
  reviewDesk,
  reviewExpiredReason,
  reviewRecord,
  type TakenDecision,
} from '../reviews/review-desk';

type InvoiceActivities = ReturnType<typeof createInvoiceActivities>;

const invoices = proxyActivities<InvoiceActivities>(databaseActivityOptions);

type Held = Extract<InvoiceCheckResult, { outcome: 'hold' }>;

const awaitsLink = (answer: { outcome: string }) => answer.outcome === 'await_link';

/** The hold a grant refused by the ledger puts an invoice in (as its activity recorded it). */
const REFUSAL_HOLDS: Record<GrantRefusal['refusal']['code'], InvoiceHoldCode> = {
  balance_out_of_range: 'balance_out_of_range',
  account_not_found: 'subscription_unlinked',
};

/**
 * One Stripe event about a subscription invoice. `invoice.paid` grants the plan's credits for
 * the period exactly once (the ledger key is the invoice ID, whatever number of events describe
 * it) as a grant that expires at the period's end when the plan does not roll credits over, then
 * emails the receipt. `invoice.payment_failed` sends the dunning email, once per invoice. Both
 * wait for the checkout session that links the subscription to an account if it has not
 * arrived yet; a paid invoice that cannot be checked, or whose grant the ledger refuses, waits
 * for an operator's decision (the `decide` update, or the `review` signal).
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
  // What the run holds while it waits for a reviewer, for the check of an approval.
  let heldNow: Held | null = null;
  const desk = reviewDesk({
    workflowId,
    stage: () => status.stage,
    approvalRefusal: (decision) =>
      heldNow?.code === 'plan_unknown' && decision.credits === undefined
        ? errors.reviewCreditsRequired(workflowId)
        : null,
  });
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
  // The decision that approved the check being acted on, whose update waits for what it came to.
  let approval: TakenDecision | null = null;
  let granted: InvoiceGrantOutcome | null = null;
  while (granted === null) {
    while (check.outcome === 'hold') {
      // An approval that came to a hold (held again, or refused by the ledger) was not applied.
      if (approval !== null) answer(unapplied(check.code, check.reason, check.auditId));
      const decided = await review(check);
      if (decided === null) return status;
      ({ check, approval } = decided);
    }
    if (check.outcome === 'already_granted') {
      if (approval !== null) {
        answer({
          ...unapplied('already_granted', 'another event for this invoice granted it', check.auditId),
          stage: 'already_granted',
        });
      }
      status.ledgerEntryId = check.ledgerEntryId;
      return finish('already_granted');
    }
    if (check.outcome !== 'grant') {
      status.reason =
        check.outcome === 'no_grant' ? check.reason : 'the subscription is not linked to an account';
      if (approval !== null) {
        answer({ ...unapplied('no_grant', status.reason, check.auditId), stage: 'not_granted' });
      }
      return finish('not_granted');
    }

    const { grant } = check;
    account(grant.accountId);
    status.credits = grant.credits;
    enter('granting');
    const attempt = await invoices.grantInvoice(grant, approval === null ? null : reviewRecordOf(approval));
    if (!('refusal' in attempt)) {
      granted = attempt;
      break;
    }
    // Refused by the ledger: held for review (its activity recorded the hold, or the attempt).
    const code = REFUSAL_HOLDS[attempt.refusal.code];
    const reason = approval === null ? INVOICE_HOLD_REASONS[code] : attempt.refusal.reason;
    check = { outcome: 'hold', code, reason, accountId: grant.accountId, auditId: attempt.auditId };
  }
  status.ledgerEntryId = granted.ledgerEntryId;
  const next: InvoiceWorkflowStatus['stage'] = !granted.applied
    ? 'already_granted'
    : granted.receiptKey === null
      ? 'completed'
      : 'sending_receipt';
  if (approval !== null) {
    answer({
      decision: 'approve',
      applied: granted.applied,
      stage: next,
      credits: granted.applied ? status.credits : null,
      ledgerEntryId: granted.ledgerEntryId,
      auditId: granted.auditId ?? null,
      reasonCode: granted.applied ? null : 'already_granted',
      reason: granted.applied ? null : 'another event for this invoice granted it first',
    });
  }
  if (!granted.applied) return finish('already_granted');
  if (granted.receiptKey === null) {
    status.reason = 'a later period had already started: no receipt for this one';
    return finish('completed');
  }
  enter('sending_receipt');
  status.email = 'pending';
  status.email = await deliverEmail(granted.receiptKey, input.timeouts.receipt);
  return finish(status.email === 'sent' ? 'completed' : 'completed_receipt_failed');

  /**
   * Waits for an operator; an approval checks again with the reviewer's say (what that check
   * answers, and the decision). Null: rejected or never reviewed, and closed.
   */
  async function review(held: Held): Promise<{ check: InvoiceCheckResult; approval: TakenDecision } | null> {
    heldNow = held;
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
      const recorded = await invoices.closeInvoice({
        invoice,
        accountId: held.accountId,
        workflowId,
        status: closed,
        reasonCode: held.code,
        reason,
        review: decision === null ? null : reviewRecordOf(decision),
      });
      status.reason = reason;
      enter(closed);
      if (decision !== null) {
        answer({
          decision: 'reject',
          applied: true,
          stage: closed,
          credits: null,
          ledgerEntryId: null,
          auditId: recorded?.auditId ?? null,
          reasonCode: null,
          reason,
        });
      }
      return null;
    }
    const check = await invoices.checkInvoice({
      invoice,
      workflowId,
      linkTimedOut: true,
      approval: {
        reviewer: decision.reviewer,
        ...(decision.credits === undefined ? {} : { credits: decision.credits }),
      },
      review: reviewRecordOf(decision),
    });
    return { check, approval: decision };
  }

  function answer(outcome: ReviewAnswer): void {
    desk.answer(outcome);
  }

  /** What the audit row of a decision records: the decision, and what was held when it came. */
  function reviewRecordOf(decision: TakenDecision) {
    return reviewRecord(workflowId, decision, {
      purchaseId: invoice.id,
      accountId: status.accountId,
      reasonCode: status.reasonCode,
      reason: status.reason,
      credits: null,
      amountCents: invoice.amountPaid,
      currency: invoice.currency,
    });
  }

  /** The answer of an approval the run took but could not carry out: still held. */
  function unapplied(reasonCode: string, reason: string, auditId: number | null | undefined): ReviewAnswer {
    return {
      decision: 'approve',
      applied: false,
      stage: 'held_for_review',
      credits: null,
      ledgerEntryId: null,
      auditId: auditId ?? null,
      reasonCode,
      reason,
    };
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
