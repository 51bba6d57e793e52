import type { Duration } from '@temporalio/common';
import { ApplicationFailure, condition, log, patched, setHandler } from '@temporalio/workflow';
import type { ReviewDecisionRecord } from '../../db/audit/audit-log';
import { errors, type BillingError } from '../../domain/errors';
import { decideUpdate, reviewSignal, type ReviewAnswer, type ReviewDecision } from './contract';

export type { ReviewDecisionRecord };

/** A decision the run took: the decision, and the key its audit row is written under. */
export type TakenDecision = ReviewDecision & { key: string };

const HELD = 'held_for_review';

/**
 * Marks a run whose `review` signal drops a malformed decision. Runs from before took any
 * decision sent while they asked for one (a malformed approval sent them back to waiting, with a
 * new timer), and replay as they ran.
 */
export const SIGNAL_CHECK_PATCH = 'review-signal-checked';

// The audit log's limits (db/migrations): a decision past them could never be recorded.
const MAX_REVIEWER = 200;
const MAX_NOTE = 2000;
// PostgreSQL refuses NUL in text; the API refuses every control character before it gets here.
const NUL = '\u0000';

/** What is wrong with a decision as it arrived (a signal or update carries any JSON), or null. */
function decisionProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'a decision is an object';
  const { decision, reviewer, note, credits } = value as Record<string, unknown>;
  if (decision !== 'approve' && decision !== 'reject') return 'decision is approve or reject';
  if (typeof reviewer !== 'string' || reviewer.length === 0 || reviewer.length > MAX_REVIEWER)
    return `reviewer is a name of 1 to ${MAX_REVIEWER} characters`;
  if (note !== undefined && (typeof note !== 'string' || note.length > MAX_NOTE))
    return `note is text of at most ${MAX_NOTE} characters`;
  if (reviewer.includes(NUL) || (typeof note === 'string' && note.includes(NUL)))
    return 'reviewer and note hold no NUL character';
  if (credits !== undefined) {
    if (decision !== 'approve') return 'credits are given only with an approval';
    if (typeof credits !== 'number' || !Number.isSafeInteger(credits) || credits <= 0)
      return 'credits is a positive whole number';
  }
  return null;
}

/** A refusal as the update's caller receives it: the error code's failure type, its details. */
const failureOf = (error: BillingError) =>
  ApplicationFailure.create({
    type: error.failureType,
    message: error.message,
    details: error.details === undefined ? [] : [error.details],
    nonRetryable: true,
  });

/**
 * The review desk of a run that can hold a payment for an operator: the `decide` update (and the
 * `review` signal), one decision at a time. The run takes decisions with `decision()` while it is
 * held, applies each (its activities write the audit row in the effect's transaction, under the
 * decision's `key`), and tells the desk what it came to with `answer()`, which is what the
 * update returns.
 */
export function reviewDesk(options: {
  workflowId: string;
  /** The run's stage now: a decision is taken only while it is `held_for_review`. */
  stage: () => string;
  /** Why an approval cannot grant as things stand (no credits for an unknown pack, no buyer). */
  approvalRefusal: (decision: ReviewDecision) => BillingError | null;
}) {
  const { workflowId } = options;
  let pending: { decision: ReviewDecision; ticket: number | null } | null = null;
  // The decision taken and not yet answered; its update's ticket, when it came as one.
  let applying: { ticket: number | null } | null = null;
  let tickets = 0;
  let taken = 0;
  const answers = new Map<number, ReviewAnswer>();

  function refusal(decision: unknown): BillingError | null {
    const problem = decisionProblem(decision);
    if (problem !== null) return errors.invalidValue('decision', problem);
    const stage = options.stage();
    if (stage !== HELD) return errors.notHeldForReview(workflowId, stage);
    if (pending !== null || applying !== null) return errors.reviewInProgress(workflowId);
    return null;
  }

  setHandler(reviewSignal, (decision) => {
    // A signal has no answer: a decision the run cannot take is dropped, as before the update.
    // An approval that cannot grant is taken, and the run says why in its reason.
    const malformed = decisionProblem(decision) !== null;
    if (malformed && !patched(SIGNAL_CHECK_PATCH)) {
      // A run from before the check: it takes the decision as it did then.
      if (options.stage() === HELD && pending === null) pending = { decision, ticket: null };
      return;
    }
    const refused = refusal(decision);
    if (refused === null) pending = { decision, ticket: null };
    else log.warn('review signal dropped', { workflowId, code: refused.code });
  });

  setHandler(
    decideUpdate,
    async (decision) => {
      tickets += 1;
      const ticket = tickets;
      pending = { decision, ticket };
      await condition(() => answers.has(ticket));
      const answer = answers.get(ticket) as ReviewAnswer;
      answers.delete(ticket);
      return answer;
    },
    {
      validator: (decision: ReviewDecision) => {
        const refused =
          refusal(decision) ?? (decision.decision === 'approve' ? options.approvalRefusal(decision) : null);
        if (refused !== null) throw failureOf(refused);
      },
    },
  );

  return {
    /** The next decision, or null when none came within `timeout`. */
    async decision(timeout: Duration): Promise<TakenDecision | null> {
      await condition(() => pending !== null, timeout);
      // A decision that came with the deadline is still taken: its update waits for an answer.
      if (pending === null) return null;
      const { decision, ticket } = pending;
      pending = null;
      applying = { ticket };
      taken += 1;
      return { ...decision, key: `review:${workflowId}:${taken}` };
    },
    /** What the decision taken last came to: its update's answer (a signal's goes nowhere). */
    answer(answer: ReviewAnswer): void {
      if (applying?.ticket != null) answers.set(applying.ticket, answer);
      applying = null;
    },
  };
}

/** What the audit row of a decision records, from what the run held when it came. */
export function reviewRecord(
  workflowId: string,
  decision: TakenDecision,
  before: Record<string, unknown>,
): ReviewDecisionRecord {
  return {
    key: decision.key,
    workflowId,
    reviewer: decision.reviewer,
    decision: decision.decision,
    note: decision.note ?? null,
    credits: decision.credits ?? null,
    before: { stage: HELD, ...before },
  };
}

/** Why a held payment closed without credits, in the words the API and the ledger show. */
export const reviewExpiredReason = (timeout: Duration) => `no review decision within ${timeout}`;
export const rejectionReason = (decision: ReviewDecision, heldReason: string) =>
  `rejected by ${decision.reviewer}: ${decision.note ?? heldReason}`;
