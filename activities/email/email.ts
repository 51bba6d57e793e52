import { activityInfo, heartbeat, log } from '@temporalio/activity';
import {
  deliverOutboxMessage,
  findStalePendingEmails,
  type StalePendingEmail,
  markEmailFailed,
  type DeliveryOutcome,
} from '../../db/email/outbox';
import { BillingError, errors } from '../../domain/errors';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';
import { isPermanentSmtpError } from '../../email/mailer';

/** How long a try inside a workflow task waits for SMTP (a send normally takes milliseconds). */
const IN_TASK_TRY_MS = 3_000;
/** After such a try failed or stalled, how long the next ones are skipped. */
const IN_TASK_PAUSE_MS = 30_000;

/** A refusal of this one email (permanent SMTP answer, no such message) says nothing of SMTP's health. */
const isFinalEmailFailure = (error: unknown) => error instanceof BillingError && !error.retryable;

// One sweep reads at most 50 pages of 200: the sweep runs every maintenance interval, so any
// backlog beyond that is reached by the next one.
const SWEEP_PAGE_SIZE = 200;
const SWEEP_MAX_PAGES = 50;

/**
 * What the email activities use: the outbox, SMTP, the domain of message IDs, the sweep's ages,
 * Temporal's word on whether an email's workflow still runs, and the counters.
 */
export type EmailActivityDependencies = Pick<
  ActivityDependencies,
  'sql' | 'mailer' | 'workflows' | 'metrics'
> & {
  config: Pick<ActivityConfig, 'emailDomain' | 'outbox'>;
};

/** Emails queued in the outbox: delivery by their workflow, and the sweep for any left behind. */
export function createEmailActivities<D extends EmailActivityDependencies>({
  sql,
  mailer,
  config,
  workflows,
  metrics,
}: D) {
  // `sent` is answered only by the call that handed the email over (a retry finds it
  // `already_sent`), and a failure is recorded only while the row is pending: each counts once.
  const deliver = async (key: string): Promise<DeliveryOutcome> => {
    const outcome = await deliverOutboxMessage(sql, key, (row) =>
      mailer.send({
        to: row.to_address,
        subject: row.subject,
        text: row.body_text,
        messageId: `<outbox-${row.id}@${config.emailDomain}>`,
      }),
    );
    if (outcome.status === 'sent') metrics?.emailSent(key);
    return outcome;
  };
  const recordFailure = async (key: string, reason: string): Promise<void> => {
    if (await markEmailFailed(sql, key, reason)) metrics?.emailFailed(key);
  };

  const send = async (key: string): Promise<{ status: string }> => {
    try {
      const outcome = await deliver(key);
      log.info('email delivery', { emailKey: key, status: outcome.status });
      return { status: outcome.status };
    } catch (error) {
      if (isPermanentSmtpError(error)) throw errors.smtpRefused((error as Error).message);
      throw error;
    }
  };

  // A try inside a workflow task (a local activity) holds that task and its slot, so it must not
  // wait on an SMTP server in trouble: it gives up early, and after a failure or a stall the
  // next tries give up at once for a while. The email then goes to its retried activity; a send
  // still in flight keeps the outbox row locked, so the two never both send it.
  let inTaskPausedUntil = 0;
  // Bumped by every pause: a slow success that began before a failure does not end its pause.
  let inTaskPauses = 0;
  const sendInTask = async (key: string): Promise<{ status: string }> => {
    if (Date.now() < inTaskPausedUntil) throw errors.smtpTryDeferred();
    const pausesBefore = inTaskPauses;
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(errors.smtpTryStalled()), IN_TASK_TRY_MS);
    });
    const sending = send(key);
    try {
      const answer = await Promise.race([sending, stalled]);
      if (inTaskPauses === pausesBefore) inTaskPausedUntil = 0;
      return answer;
    } catch (error) {
      if (!isFinalEmailFailure(error)) {
        inTaskPausedUntil = Date.now() + IN_TASK_PAUSE_MS;
        inTaskPauses += 1;
      }
      sending.catch(() => {}); // a stalled send ends on its own; its failure is recorded there
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    async sendReceipt(input: { receiptKey: string }): Promise<{ status: string }> {
      return activityInfo().isLocal ? sendInTask(input.receiptKey) : send(input.receiptKey);
    },

    async recordReceiptFailure(input: { receiptKey: string; reason: string }): Promise<void> {
      await recordFailure(input.receiptKey, input.reason);
      log.error('email not delivered', input);
    },

    /**
     * Nothing queued may stay pending with no workflow to deliver it: an email pending past the
     * sweep age whose workflow has closed (or is unknown) gets one delivery attempt here; a
     * permanent refusal, or still no success past the give-up age, records it as failed.
     */
    async sweepOutbox(): Promise<{ delivered: number; failed: number; waiting: number }> {
      const tally = { delivered: 0, failed: 0, waiting: 0 };
      // Page on past the emails whose workflows still run, so that however many of those there
      // are, an abandoned one behind them is reached; bounded, the next sweep goes on.
      let after: StalePendingEmail['position'] | null = null;
      for (let page = 0; page < SWEEP_MAX_PAGES; page += 1) {
        const stale = await findStalePendingEmails(sql, config.outbox.sweepAfterMs / 1000, {
          limit: SWEEP_PAGE_SIZE,
          after,
        });
        for (const { key, workflowId, ageSeconds } of stale) {
          heartbeat(key);
          if (workflowId !== null && (await workflows.isRunning(workflowId))) {
            tally.waiting += 1;
            continue;
          }
          try {
            await deliver(key);
            tally.delivered += 1;
            log.warn('outbox sweep delivered an email its workflow left pending', {
              emailKey: key,
              workflowId,
            });
          } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            if (isPermanentSmtpError(error) || ageSeconds * 1000 >= config.outbox.giveUpAfterMs) {
              await recordFailure(key, `outbox sweep: ${reason}`);
              tally.failed += 1;
              log.error('outbox sweep recorded an email as failed', { emailKey: key, workflowId, reason });
            } else {
              tally.waiting += 1;
            }
          }
        }
        if (stale.length < SWEEP_PAGE_SIZE) break;
        after = stale[stale.length - 1]?.position ?? null;
      }
      return tally;
    },
  };
}
