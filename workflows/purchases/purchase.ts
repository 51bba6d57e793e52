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
  type PurchaseGrant,
  type PurchaseStage,
  type PurchaseValidation,
  type PurchaseWorkflowInput,
  type PurchaseWorkflowResult,
  type PurchaseWorkflowStatus,
} from './contract';
import type { ReviewDecision } from '../reviews/contract';
import { FailureType } from '../../domain/failure-types';
import { purchaseGrantFor } from '../../domain/purchase-rules';
import { PurchaseStatus } from '../shared/search-attributes';
import { applicationFailureOf } from '../shared/activity-failures';
import { databaseActivityOptions, databaseLocalActivityOptions } from '../shared/activity-options';
import { deliverEmail, tryEmailInThisTask } from '../email/delivery';
import { rejectionReason, reviewDesk, reviewExpiredReason } from '../reviews/review-desk';

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

/**
 * One Stripe event about one checkout session: validate, then grant exactly once (the ledger's
 * key is the session ID, whatever number of events describe it), then email the receipt.
 * Anything that fails validation waits for an operator's `review` signal.
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
  const desk = reviewDesk(() => status.stage === 'held_for_review');
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

  const checked: CheckedPurchase = singleTask
    ? await localPurchases.validateAndGrantPurchase({ session, workflowId })
    : { validation: await db.validatePurchase({ session, workflowId }), granted: null };
  const { validation } = checked;
  if (validation.outcome === 'awaiting_payment') return finish('awaiting_payment');
  if (validation.outcome === 'already_granted') {
    status.ledgerEntryId = validation.ledgerEntryId;
    return finish('already_granted');
  }

  let granted: GrantOutcome | null = checked.granted;
  if (granted !== null && validation.outcome === 'valid') status.credits = validation.grant.credits;
  // Why the last approval did not grant, shown to the reviewer instead of the validation's reason.
  let sentBack: string | null = null;
  while (granted === null) {
    let grant: PurchaseGrant;
    if (validation.outcome === 'valid') {
      grant = validation.grant;
    } else {
      const review = await awaitReview(validation, sentBack ?? validation.reason);
      if (review.kind !== 'approved') {
        await db.closePurchase({
          session,
          workflowId,
          status: review.kind,
          reasonCode: validation.reasonCode,
          reason: review.reason,
        });
        status.reason = review.reason;
        return finish(review.kind);
      }
      grant = review.grant;
    }
    enter('granting');
    status.credits = grant.credits;
    try {
      granted = await db.grantPurchase(grant);
    } catch (error) {
      // An approval for an account that does not exist yet goes back to the reviewer.
      if (validation.outcome !== 'held' || applicationFailureOf(error)?.type !== FailureType.AccountNotFound)
        throw error;
      sentBack = `${validation.reason}; approved, but account ${grant.accountId} does not exist`;
    }
  }
  status.ledgerEntryId = granted.ledgerEntryId;
  if (!granted.applied || granted.receiptKey === null) {
    // Another event for this session made the grant; its workflow sends the receipt.
    return finish('already_granted');
  }

  status.receipt = 'pending';
  // Only a grant made in the run's first task tries the receipt in that task. After an approval
  // the review desk waits for the approval's task to finish, and a slow SMTP server must not
  // make an approval that granted look unapplied.
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
    held: Extract<PurchaseValidation, { outcome: 'held' }>,
    reason: string,
  ): Promise<
    { kind: 'approved'; grant: PurchaseGrant } | { kind: 'rejected' | 'review_expired'; reason: string }
  > {
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
        return { kind: 'rejected', reason: rejectionReason(decision, held.reason) };
      }
      const approvedGrant = approvalGrant(held, decision);
      if (approvedGrant) return { kind: 'approved', grant: approvedGrant };
      status.reason = `${held.reason}; approval needs a positive whole number of credits (pack unknown)`;
    }
  }

  function approvalGrant(
    held: Extract<PurchaseValidation, { outcome: 'held' }>,
    decision: ReviewDecision,
  ): PurchaseGrant | null {
    const credits = decision.credits ?? held.proposal?.credits;
    if (credits === undefined || !Number.isSafeInteger(credits) || credits <= 0 || !session.accountId) {
      return null;
    }
    const sold = {
      accountId: session.accountId,
      packId: held.proposal?.packId ?? session.packId,
      packName: held.proposal?.packName ?? 'Credits',
      credits,
    };
    return purchaseGrantFor(session, sold, workflowId, decision.reviewer);
  }
}
