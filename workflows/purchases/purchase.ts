import {
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createPurchaseActivities } from '../../activities/purchases/purchase';
import {
  statusQuery,
  type CheckedPurchase,
  type GrantOutcome,
  type GrantRefusal,
  type PurchaseGrant,
  type PurchaseStage,
  type PurchaseValidation,
  type PurchaseWorkflowInput,
  type PurchaseWorkflowResult,
  type PurchaseWorkflowStatus,
} from './contract';
import type { ReviewAnswer, ReviewDecision } from '../reviews/contract';
import { errors } from '../../domain/errors';
import { FailureType } from '../../domain/failure-types';
import { HOLD_REASONS, purchaseGrantFor, type HoldReasonCode } from '../../domain/purchase-rules';
import { AccountId, PurchaseStatus } from '../shared/search-attributes';
import { applicationFailureOf } from '../shared/activity-failures';
import { databaseActivityOptions, databaseLocalActivityOptions } from '../shared/activity-options';
import { deliverEmail, tryEmailInThisTask } from '../email/delivery';
import {
  rejectionReason,
  reviewDesk,
  reviewExpiredReason,
  reviewRecord,
  type ReviewDecisionRecord,
  type TakenDecision,
} from '../reviews/review-desk';

type PurchaseActivities = ReturnType<typeof createPurchaseActivities>;

const purchases = proxyActivities<PurchaseActivities>(databaseActivityOptions);
const localPurchases = proxyLocalActivities<PurchaseActivities>(databaseLocalActivityOptions);

/**
 * Runs started before this change took validation, grant and closing as activities of their
 * own, with a search-attribute update at every stage; they replay that way. Runs started since
 * take them as local activities in the workflow task that needs them (a valid purchase is
 * validated and granted in its first workflow task, with no round trip through the server) and
 * update `PurchaseStatus` only at the stages an operator looks for. Once no run of the old path
 * is open (the review timeout and receipt deadline have passed since the deploy), this becomes
 * `deprecatePatch`.
 */
export const LOCAL_DATABASE_STEPS_PATCH = 'purchase-local-database-steps';

/**
 * Runs started since this change validate and grant in one local activity and try the receipt
 * once as a local activity too, so a valid purchase with a reachable SMTP server is one workflow
 * task, no activity task, and one `PurchaseStatus` update. Only when that quick try fails does
 * the receipt go to its regular activity with the long retry (an approved purchase's receipt
 * goes there at once). Runs of the two paths before it replay as they were recorded.
 */
export const SINGLE_TASK_PATCH = 'purchase-single-workflow-task';

/** Stages nobody waits in: a purchase passes through them within one workflow task. */
const TRANSIENT_STAGES: ReadonlySet<PurchaseStage> = new Set(['validating', 'granting']);

/** A validation that holds the purchase: what the reviewer decides on. */
type Held = Extract<PurchaseValidation, { outcome: 'held' }>;

/** The hold a grant refused by the ledger puts a purchase in (as its activity recorded it). */
const REFUSAL_HOLDS: Record<GrantRefusal['refusal']['code'], HoldReasonCode> = {
  balance_out_of_range: 'balance_out_of_range',
  account_not_found: 'account_unknown',
};

/** How an approval the ledger refused reads in the reason the reviewer sees. */
const refusedApproval = (refusal: GrantRefusal['refusal'], accountId: string) =>
  refusal.code === 'account_not_found'
    ? `approved, but account ${accountId} does not exist`
    : `approved, but the grant would take the balance of account ${accountId} past 2^53 − 1 credits`;

/**
 * One Stripe event about one checkout session: validate, then grant exactly once (the ledger's
 * key is the session ID, whatever number of events describe it), then email the receipt.
 * Anything that fails validation, or that the ledger refuses, waits for an operator's decision
 * (the `decide` update, or the `review` signal).
 */
export async function purchaseWorkflow(input: PurchaseWorkflowInput): Promise<PurchaseWorkflowResult> {
  const { session } = input;
  const { workflowId } = workflowInfo();

  const status: PurchaseWorkflowStatus = {
    stage: 'validating',
    checkoutSessionId: session.id,
    accountId: session.accountId,
    credits: null,
    reasonCode: null,
    reason: null,
    ledgerEntryId: null,
    receipt: 'not_applicable',
    review: null,
  };
  setHandler(statusQuery, () => status);
  // What the run holds while it waits for a reviewer, for the check of an approval.
  let heldNow: Held | null = null;
  const desk = reviewDesk({
    workflowId,
    stage: () => status.stage,
    approvalRefusal: (decision) => (heldNow === null ? null : approvalRefusal(heldNow, decision)),
  });
  // Checked newest first: a new run records only the newest marker.
  const singleTask = patched(SINGLE_TASK_PATCH);
  const localSteps = singleTask || patched(LOCAL_DATABASE_STEPS_PATCH);
  const db = localSteps ? localPurchases : purchases;

  const enter = (stage: PurchaseStage) => {
    status.stage = stage;
    if (!localSteps || !TRANSIENT_STAGES.has(stage)) {
      upsertSearchAttributes([{ key: PurchaseStatus, value: stage }]);
    }
  };
  const finish = (stage: PurchaseStage): PurchaseWorkflowResult => {
    enter(stage);
    const { checkoutSessionId, credits, ledgerEntryId, receipt: receiptState, reasonCode } = status;
    return { stage, checkoutSessionId, credits, ledgerEntryId, receipt: receiptState, reasonCode };
  };
  /**
   * The buyer, once the check has found them (the snapshot can name another account than the
   * session's client reference): the run is listed, and found in the Temporal UI, under them.
   */
  const showBuyer = (buyer: string | null | undefined) => {
    if (!buyer || buyer === status.accountId) return;
    status.accountId = buyer;
    upsertSearchAttributes([{ key: AccountId, value: buyer }]);
  };

  const checked: CheckedPurchase = singleTask
    ? await localPurchases.validateAndGrantPurchase({ session, workflowId })
    : { validation: await db.validatePurchase({ session, workflowId }), granted: null };
  let { validation } = checked;
  if (validation.outcome === 'awaiting_payment') return finish('awaiting_payment');
  if (validation.outcome === 'already_granted') {
    status.ledgerEntryId = validation.ledgerEntryId;
    return finish('already_granted');
  }
  showBuyer(validation.outcome === 'valid' ? validation.grant.accountId : validation.buyer);

  let granted: GrantOutcome | null = checked.granted;
  if (granted !== null && validation.outcome === 'valid') status.credits = validation.grant.credits;
  // Why the last approval did not grant, shown to the reviewer instead of the validation's reason.
  let sentBack: string | null = null;
  // The decision that approved the grant being made, whose update waits for what it came to.
  let approval: TakenDecision | null = null;
  while (granted === null) {
    let grant: PurchaseGrant;
    if (validation.outcome === 'valid') {
      grant = validation.grant;
    } else {
      const review = await awaitReview(validation, sentBack ?? validation.reason);
      if (review.kind !== 'approved') {
        const closed = await db.closePurchase({
          session,
          workflowId,
          status: review.kind,
          reasonCode: validation.reasonCode,
          reason: review.reason,
          accountId: buyerOfHeld(validation),
          review: review.kind === 'rejected' ? review.record : null,
        });
        status.reason = review.reason;
        const result = finish(review.kind);
        if (review.kind === 'rejected') {
          desk.answer({
            ...unapplied('reject', review.kind),
            applied: true,
            auditId: closed?.auditId ?? null,
            reasonCode: null,
            reason: review.reason,
          });
        }
        return result;
      }
      grant = review.grant;
      approval = review.decision;
    }
    enter('granting');
    status.credits = grant.credits;
    let attempt: GrantOutcome | GrantRefusal;
    try {
      attempt = await db.grantPurchase(grant, approval === null ? null : reviewRecordOf(approval));
    } catch (error) {
      // An approval for an account that does not exist goes back to the reviewer.
      if (validation.outcome !== 'held' || applicationFailureOf(error)?.type !== FailureType.AccountNotFound)
        throw error;
      attempt = { refusal: { code: 'account_not_found', reason: 'no such account' }, auditId: null };
    }
    if (!('refusal' in attempt)) {
      granted = attempt;
      break;
    }
    const { refusal } = attempt;
    if (validation.outcome === 'valid') {
      // A grant the ledger refused holds the purchase (its activity recorded the hold).
      const reasonCode = REFUSAL_HOLDS[refusal.code];
      validation = { outcome: 'held', reasonCode, reason: HOLD_REASONS[reasonCode], proposal: grant };
      continue;
    }
    sentBack = `${validation.reason}; ${refusedApproval(refusal, grant.accountId)}`;
    status.credits = validation.proposal?.credits ?? null;
    desk.answer({
      ...unapplied('approve', 'held_for_review'),
      auditId: attempt.auditId,
      reasonCode: refusal.code,
      reason: sentBack,
    });
    approval = null;
  }
  status.ledgerEntryId = granted.ledgerEntryId;
  const next: PurchaseStage =
    !granted.applied || granted.receiptKey === null ? 'already_granted' : 'sending_receipt';
  if (approval !== null) {
    desk.answer({
      decision: 'approve',
      applied: granted.applied,
      stage: next,
      credits: granted.applied ? status.credits : null,
      ledgerEntryId: granted.ledgerEntryId,
      auditId: granted.auditId ?? null,
      reasonCode: granted.applied ? null : 'already_granted',
      reason: granted.applied ? null : 'another event for this session granted it first',
    });
  }
  if (next === 'already_granted' || granted.receiptKey === null) {
    // Another event for this session made the grant; its workflow sends the receipt.
    return finish('already_granted');
  }

  status.receipt = 'pending';
  // Only a grant made in the run's first task tries the receipt in that task. An approval is
  // answered as soon as its grant commits, and its receipt goes to the retried activity at once:
  // a slow SMTP server never holds up the reviewer's answer.
  const quick =
    singleTask && checked.granted !== null ? await tryEmailInThisTask(granted.receiptKey) : 'retry';
  if (quick !== 'retry') {
    status.receipt = quick;
  } else {
    enter('sending_receipt');
    status.receipt = await deliverEmail(granted.receiptKey, input.receiptDeadline);
  }
  return finish(status.receipt === 'sent' ? 'completed' : 'completed_receipt_failed');

  /** Waits for an operator; returns the grant to make, or why the purchase closes without one. */
  async function awaitReview(
    held: Held,
    reason: string,
  ): Promise<
    | { kind: 'approved'; grant: PurchaseGrant; decision: TakenDecision }
    | { kind: 'rejected'; reason: string; record: ReviewDecisionRecord }
    | { kind: 'review_expired'; reason: string }
  > {
    heldNow = held;
    status.reasonCode = held.reasonCode;
    status.reason = reason;
    status.credits = held.proposal?.credits ?? null;
    enter('held_for_review');
    for (;;) {
      const decision = await desk.decision(input.reviewTimeout);
      if (decision === null)
        return { kind: 'review_expired', reason: reviewExpiredReason(input.reviewTimeout) };
      status.review = {
        decision: decision.decision,
        reviewer: decision.reviewer,
        note: decision.note ?? null,
      };
      if (decision.decision === 'reject') {
        const rejected = rejectionReason(decision, held.reason);
        return { kind: 'rejected', reason: rejected, record: reviewRecordOf(decision) };
      }
      const approvedGrant = approvalGrant(held, decision);
      if (approvedGrant) return { kind: 'approved', grant: approvedGrant, decision };
      // Only a signal gets here: the update's validator refuses an approval that cannot grant.
      const refused = approvalRefusal(held, decision);
      status.reason =
        refused?.code === 'review_buyer_unknown'
          ? `${held.reason}; approval needs a buyer, and nobody is known to have paid`
          : `${held.reason}; approval needs a positive whole number of credits (pack unknown)`;
      desk.answer({
        ...unapplied('approve', 'held_for_review'),
        reasonCode: refused?.code ?? 'review_credits_required',
        reason: status.reason,
      });
    }
  }

  /** What the audit row of a decision records: the decision, and what was held when it came. */
  function reviewRecordOf(decision: TakenDecision): ReviewDecisionRecord {
    return reviewRecord(workflowId, decision, {
      purchaseId: session.id,
      accountId: status.accountId,
      reasonCode: status.reasonCode,
      reason: status.reason,
      credits: heldNow?.proposal?.credits ?? null,
      amountCents: session.amountTotal,
      currency: session.currency,
    });
  }

  /** The account an approval credits: the buyer the check found, never metadata's. */
  function buyerOfHeld(held: Held): string | null {
    // Runs that validated before the check named the buyer approve to the session's account.
    return held.buyer !== undefined ? held.buyer : (held.proposal?.accountId ?? session.accountId);
  }

  function approvalRefusal(held: Held, decision: ReviewDecision) {
    if (buyerOfHeld(held) === null) return errors.reviewBuyerUnknown(workflowId);
    if (decision.credits === undefined && held.proposal === null)
      return errors.reviewCreditsRequired(workflowId);
    return null;
  }

  function approvalGrant(held: Held, decision: ReviewDecision): PurchaseGrant | null {
    const credits = decision.credits ?? held.proposal?.credits;
    const buyer = buyerOfHeld(held);
    if (credits === undefined || !Number.isSafeInteger(credits) || credits <= 0 || buyer === null) {
      return null;
    }
    const sold = {
      accountId: buyer,
      packId: held.proposal?.packId ?? session.packId,
      packName: held.proposal?.packName ?? 'Credits',
      credits,
    };
    return purchaseGrantFor(session, sold, workflowId, decision.reviewer);
  }
}

/** The answer of a decision that changed nothing (the fields a caller fills in say why). */
function unapplied(decision: ReviewDecision['decision'], stage: PurchaseStage): ReviewAnswer {
  return {
    decision,
    applied: false,
    stage,
    credits: null,
    ledgerEntryId: null,
    auditId: null,
    reasonCode: null,
    reason: null,
  };
}
