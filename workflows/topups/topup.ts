import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  WorkflowIdReusePolicy,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { createFollowUpActivities } from '../../activities/topups/follow-ups';
import type { createTopupActivities, TopupPaymentRequest } from '../../activities/topups/topup';
import type { PaymentIntentSummary } from '../../stripe/payment-intent';
import {
  lowBalanceNoticeStatusQuery,
  TOPUP_EMAIL_DEADLINE,
  TOPUP_GRANT_RETRIES_PER_RUN,
  TOPUP_GRANT_RETRY_FIRST_PAUSE_MS,
  TOPUP_GRANT_RETRY_LONGEST_PAUSE_MS,
  TOPUP_PAYMENT_EVENT_WAIT,
  TOPUP_PAYMENT_MAX_WAITS,
  topupPaymentSignal,
  topupStatusQuery,
  type LowBalanceNoticeInput,
  type TopupGrantOwed,
  type TopupPaymentSignal,
  type TopupStage,
  type TopupWorkflowInput,
  type TopupWorkflowResult,
  type TopupWorkflowStatus,
} from './contract';
import type { ErrorCode } from '../../domain/error-codes';
import { awaitsStripesAnswer } from '../../domain/topup-rules';
import { FailureType } from '../../domain/failure-types';
import { databaseActivityOptions, maintenanceActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';
import { deliverEmail } from '../email/delivery';

type TopupActivities = ReturnType<typeof createTopupActivities> & ReturnType<typeof createFollowUpActivities>;

const topups = proxyActivities<TopupActivities>(databaseActivityOptions);

/**
 * Stripe calls: a short attempt each (the SDK retries the network itself), retried with backoff
 * for a day; every call carries an idempotency key derived from the top-up ID, so a retry is the
 * same request. A decline is an answer, not a failure, so nothing here retries a declined card.
 */
const stripe = proxyActivities<TopupActivities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/**
 * One automatic top-up: charge the saved card off-session, wait for Stripe's event about the
 * payment intent (or ask Stripe after a day), then grant through the purchase path, or record
 * the failure, which emails a link to pay on-session and may turn automatic top-up off.
 */
export async function topupWorkflow(input: TopupWorkflowInput): Promise<TopupWorkflowResult> {
  const { workflowId } = workflowInfo();
  const status: TopupWorkflowStatus = {
    stage: 'starting',
    topupId: input.topupId,
    accountId: null,
    credits: null,
    amountCents: null,
    currency: null,
    paymentIntentId: null,
    failureCode: null,
    reason: null,
    ledgerEntryId: null,
    autoTopupDisabled: false,
    email: 'not_applicable',
  };
  const stage = trackStage(status, topupStatusQuery);
  const events: TopupPaymentSignal[] = [];
  let grantedLate = false;
  let toldLate = false;
  setHandler(topupPaymentSignal, (signal) => {
    events.push(signal);
  });
  stage.account(input.accountId);
  const finish = (last: TopupStage): TopupWorkflowResult => {
    stage.enter(last);
    const { topupId, paymentIntentId, failureCode, ledgerEntryId, autoTopupDisabled, email } = status;
    return { stage: last, topupId, paymentIntentId, failureCode, ledgerEntryId, autoTopupDisabled, email };
  };

  if (input.grantOwed) return settle(input.grantOwed.payment, input.grantOwed);
  if (input.latePayment) return settle(input.latePayment.paymentIntent);
  const begun = await topups.beginTopup({ topupId: input.topupId });
  if (begun.outcome === 'unknown') return finish('unknown_topup');
  if (begun.outcome === 'settled') {
    // A late or repeated event started this run after the top-up was settled: nothing to do.
    status.ledgerEntryId = begun.ledgerEntryId;
    status.paymentIntentId = begun.paymentIntentId;
    status.reason = `the top-up is already ${begun.status}`;
    return finish('already_settled');
  }
  Object.assign(status, { credits: begun.credits, amountCents: begun.amountCents, currency: begun.currency });

  stage.enter('charging');
  const request = await requestPayment();
  status.paymentIntentId = request.paymentIntentId;
  if (request.kind === 'declined') return fail(request.code, request.message);

  stage.enter('awaiting_payment_event');
  const paymentIntentId = request.paymentIntentId;
  // Only payment_intent.succeeded and .payment_failed are routed here: either settles it.
  const about = (signal: TopupPaymentSignal) => signal.paymentIntent.id === paymentIntentId;
  let payment: PaymentIntentSummary | null = null;
  // A payment still processing when Stripe is asked is waited for again, up to a bound.
  for (let wait = 0; payment === null || (!settles(payment) && wait < TOPUP_PAYMENT_MAX_WAITS); wait += 1) {
    const heard = await condition(() => events.some(about), TOPUP_PAYMENT_EVENT_WAIT);
    if (heard) {
      payment = (events.find(about) as TopupPaymentSignal).paymentIntent;
      continue;
    }
    try {
      payment = await stripe.fetchTopupPayment({ paymentIntentId });
    } catch (error) {
      // Stripe unreachable for the whole wait: the top-up ends failed rather than open, and a
      // success event heard later still grants it (a run of its own, or the check below).
      if (!(error instanceof ActivityFailure) || !patched(ENDS_RECORDED)) throw error;
      return fail('stripe_unavailable', error.cause?.message ?? error.message);
    }
  }
  return settle(payment);

  /**
   * The grant of a payment Stripe reports, or the failure it stands for. `owed`: this run was
   * continued as new while it retried the grant, and goes on where the run before stopped.
   */
  async function settle(payment: PaymentIntentSummary, owed?: TopupGrantOwed): Promise<TopupWorkflowResult> {
    let granted: Granted;
    if (owed) {
      granted = await keepGranting(payment, owed);
    } else {
      stage.enter('granting');
      try {
        granted = await topups.grantTopup({ topupId: input.topupId, workflowId, payment });
      } catch (error) {
        if (!(error instanceof ActivityFailure)) throw error;
        if (patched(GRANT_KEEPS_TRYING)) {
          granted = await keepGranting(payment, { payment, attempts: 0, recorded: false }, error);
        } else {
          // How runs recorded before the grant was retried beyond its activity ended: failed.
          if (input.latePayment || !patched(ENDS_RECORDED)) throw error;
          return fail('grant_failed', error.cause?.message ?? error.message);
        }
      }
    }
    if (granted.outcome === 'failed') {
      // A late run hears a failure only for a top-up left unknown: the decline is told like any.
      if (input.latePayment && !patched(LATE_DECLINES_TOLD)) return finish('already_settled');
      return fail(granted.code, granted.message);
    }
    if (granted.outcome === 'refused') {
      status.failureCode = granted.code;
      status.reason = granted.reason;
      return finish('refused');
    }
    if (granted.outcome === 'settled') {
      status.reason = `the top-up is already ${granted.status}`;
      status.ledgerEntryId = granted.ledgerEntryId;
      return finish('already_settled');
    }
    status.ledgerEntryId = granted.ledgerEntryId;
    if (granted.receiptKey === null) return finish('succeeded');
    stage.enter('sending_receipt');
    status.email = 'pending';
    status.email = await deliverEmail(granted.receiptKey, TOPUP_EMAIL_DEADLINE);
    return finish('succeeded');
  }

  /**
   * The grant, tried again and again after the database refused it past the activity's retries
   * (days of an outage, or a refusal no retry of the activity changes): money taken must become
   * credits, so a run never gives up on it. A payment that succeeded is first recorded owed (the
   * customer told it is not finished, never that the card failed; operators alerted by the
   * owed-grants gauge); each try is the same grant under the top-up's ledger key. The pause
   * doubles up to a day; past a number of tries the run continues as new with where it stands.
   */
  async function keepGranting(
    payment: PaymentIntentSummary,
    owed: TopupGrantOwed,
    refusal?: ActivityFailure,
  ): Promise<Granted> {
    stage.enter('grant_retrying');
    status.paymentIntentId ??= payment.id;
    // Only a payment that succeeded leaves a grant owed; any other is still for the grant to decide.
    if (payment.status === 'succeeded') status.failureCode = 'grant_failed';
    status.reason = refusal ? (refusal.cause?.message ?? refusal.message) : 'the grant is owed';
    let { attempts, recorded } = owed;
    for (let tries = 0; ; tries += 1) {
      if (!recorded && payment.status === 'succeeded') {
        try {
          const notice = await topups.recordTopupGrantOwed({
            topupId: input.topupId,
            workflowId,
            message: status.reason,
          });
          recorded = true;
          if (notice.emailKey !== null) {
            status.email = 'pending';
            status.email = await deliverEmail(notice.emailKey, TOPUP_EMAIL_DEADLINE);
          }
        } catch (error) {
          // Not recorded yet: the database refuses that too. Tried again with the grant.
          if (!(error instanceof ActivityFailure)) throw error;
        }
      }
      if (tries === TOPUP_GRANT_RETRIES_PER_RUN) {
        await continueAsNew<typeof topupWorkflow>({
          topupId: input.topupId,
          accountId: input.accountId,
          ...(input.latePayment ? { latePayment: input.latePayment } : {}),
          grantOwed: { payment, attempts, recorded },
        });
      }
      await sleep(
        Math.min(
          TOPUP_GRANT_RETRY_FIRST_PAUSE_MS * 2 ** Math.min(attempts, 30),
          TOPUP_GRANT_RETRY_LONGEST_PAUSE_MS,
        ),
      );
      attempts += 1;
      try {
        const granted = await topups.grantTopup({ topupId: input.topupId, workflowId, payment });
        status.failureCode = null;
        status.reason = null;
        return granted;
      } catch (error) {
        if (!(error instanceof ActivityFailure)) throw error;
        status.reason = error.cause?.message ?? error.message;
      }
    }
  }

  /**
   * The charge; when Stripe refused our key or stayed unreachable for the activity's whole day,
   * an event about this top-up heard meanwhile says what became of it, else the top-up failed:
   * recorded so, never left open (which would stop every later top-up of the account).
   */
  async function requestPayment(): Promise<TopupPaymentRequest> {
    try {
      return await stripe.requestTopupPayment({ topupId: input.topupId });
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      const heard = events.find((signal) => signal.paymentIntent.topupId === input.topupId);
      if (heard) return { kind: 'submitted', paymentIntentId: heard.paymentIntent.id };
      const refused =
        error.cause instanceof ApplicationFailure && error.cause.type === FailureType.StripeRefused;
      return {
        kind: 'declined',
        // A refusal keeps its code of the vocabulary; anything else leaves the charge's outcome unknown.
        code: refused ? ('stripe_refused' satisfies ErrorCode) : 'stripe_unavailable',
        message: error.cause?.message ?? error.message,
        paymentIntentId: null,
      };
    }
  }

  async function fail(code: string, message: string): Promise<TopupWorkflowResult> {
    status.failureCode = code;
    status.reason = message;
    stage.enter('recording_failure');
    // Without a link the email says to buy credits instead; the failure is recorded either way.
    const { url } = await stripe
      .createTopupRecoveryLink({ topupId: input.topupId })
      .catch((error: unknown) => {
        if (error instanceof ActivityFailure) return { url: null };
        throw error;
      });
    const failed = await topups.failTopup({
      topupId: input.topupId,
      workflowId,
      code,
      message,
      recoveryUrl: url,
    });
    status.autoTopupDisabled = failed.autoTopupDisabled;
    if (failed.emailKey !== null) {
      stage.enter('sending_failure_notice');
      status.email = 'pending';
      status.email = await deliverEmail(failed.emailKey, TOPUP_EMAIL_DEADLINE);
    }
    // A success heard while the failure was recorded would find this run still open, so no run
    // of its own would grant it: this one does, turning the failure into a success.
    const ours = (signal: TopupPaymentSignal) => signal.paymentIntent.topupId === input.topupId;
    const paid = events.find((signal) => ours(signal) && signal.paymentIntent.status === 'succeeded');
    if (paid && !grantedLate && patched(ENDS_RECORDED)) {
      grantedLate = true;
      status.failureCode = null;
      status.reason = null;
      return settle(paid.paymentIntent);
    }
    // Likewise a decline heard while a failure of unknown outcome was recorded: told as a decline.
    const declined = events.find(
      (signal) =>
        ours(signal) && signal.paymentIntent.status !== 'succeeded' && settles(signal.paymentIntent),
    );
    if (declined && awaitsStripesAnswer(code) && !toldLate && patched(LATE_DECLINES_TOLD)) {
      toldLate = true;
      return settle(declined.paymentIntent);
    }
    return finish(failed.emailKey === null ? 'already_settled' : 'failed');
  }
}

type Granted = Awaited<ReturnType<TopupActivities['grantTopup']>>;

/** Marks the runs that retry a refused grant for as long as it takes, instead of ending failed. */
const GRANT_KEEPS_TRYING = 'topup-grant-keeps-trying';
/** Marks the runs that end every top-up in a recorded state and grant a success heard late. */
const ENDS_RECORDED = 'topup-ends-recorded';
/** Marks the runs that tell a decline heard after the top-up was recorded failed, outcome unknown. */
const LATE_DECLINES_TOLD = 'topup-late-declines-told';

/** Whether a payment intent's state is final for a top-up: paid, or needing the customer. */
function settles(intent: PaymentIntentSummary): boolean {
  return ['succeeded', 'requires_payment_method', 'requires_action', 'canceled'].includes(intent.status);
}

/**
 * Queues one low-balance notice in the outbox (rendered from what the crossing reported) and
 * delivers it. Runs recorded before the notice was queued here found it queued by the movement.
 */
export async function lowBalanceNoticeWorkflow(input: LowBalanceNoticeInput): Promise<{ stage: string }> {
  let state: { stage: 'sending' | 'sent' | 'failed'; accountId: string | null; emailKey: string } = {
    stage: 'sending',
    accountId: input.accountId,
    emailKey: input.emailKey,
  };
  setHandler(lowBalanceNoticeStatusQuery, () => state);
  if (patched('notice-queued-by-workflow')) await topups.queueLowBalanceNotice(input);
  const outcome = await deliverEmail(input.emailKey, TOPUP_EMAIL_DEADLINE);
  state = { ...state, stage: outcome };
  return { stage: outcome };
}

const sweeps = proxyActivities<TopupActivities>(maintenanceActivityOptions);

/**
 * The follow-ups step of a maintenance run: one activity starts, with the client the API uses,
 * the follow-ups of balance movements that nobody started (of the given accounts, or all); then
 * top-ups abandoned by their run are recorded failed.
 */
export async function sweepBalanceFollowUps(input: { accountIds?: string[] }): Promise<number> {
  const started = await sweeps.startUnstartedBalanceFollowUps(input);
  await topups.failAbandonedTopups();
  return started;
}

/**
 * How maintenance runs recorded before the sweep became one activity started the follow-ups of
 * balance movements that nobody started: as abandoned children with their own IDs, one after
 * another (one already started is a duplicate). Kept so that those runs replay.
 */
export async function startBalanceFollowUps(): Promise<number> {
  const pending = await topups.findUnstartedBalanceFollowUps();
  const started: string[] = [];
  for (const followUp of pending) {
    try {
      await startChild(followUp.workflowType, {
        workflowId: followUp.workflowId,
        args: [followUp.input],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
    started.push(followUp.workflowId);
  }
  await topups.markBalanceFollowUpsStarted({ workflowIds: started });
  if (patched('abandoned-topups')) await topups.failAbandonedTopups();
  return started.length;
}
