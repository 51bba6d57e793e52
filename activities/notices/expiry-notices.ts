import { activityInfo, heartbeat, log } from '@temporalio/activity';
import { msToNumber } from '@temporalio/common/lib/time';
import { DEFAULT_CREDIT_EXPIRY_NOTICE } from '../../config/env';
import {
  findGrantsDueForExpiryNotice,
  recordExpiryNotice,
  type ExpiryNoticeFacts,
} from '../../credits/index';
import { enqueueAccountEmail } from '../../db/email/outbox';
import { findNotificationSettings } from '../../db/notices/settings';
import { emailKeys, renderCreditExpiryEmail } from '../../email/templates';
import {
  CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE,
  type CreditExpiryNoticeInput,
  type ExpiryNoticeSweepInput,
  type ExpiryNoticeSweepResult,
} from '../../workflows/notices/contract';
import { AccountId, BillingStatus } from '../../workflows/shared/search-attributes';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';

/** The grants one sweep notices at most, soonest expiry first; the next run takes the rest. */
const BATCH = 500;

/** What the notice activities use: the database, Temporal's starts, and the notice window. */
export type NoticeActivityDependencies = Pick<ActivityDependencies, 'sql' | 'workflows'> & {
  config: Pick<ActivityConfig, 'creditExpiryNoticeMs'>;
};

/** Notices sent ahead of a change (credits about to expire), found by the maintenance schedule. */
export function createNoticeActivities<D extends NoticeActivityDependencies>({ sql, workflows, config }: D) {
  const aheadMs =
    config.creditExpiryNoticeMs === undefined
      ? msToNumber(DEFAULT_CREDIT_EXPIRY_NOTICE)
      : config.creditExpiryNoticeMs;

  /**
   * Starts the run that delivers a queued notice email. A start that fails (or a worker built
   * without a way to start workflows) loses nothing: the email is pending in the outbox under a
   * workflow that does not run, so the outbox sweep delivers it (OUTBOX_SWEEP_AFTER later).
   */
  async function startDelivery(notice: ExpiryNoticeFacts, emailKey: string): Promise<void> {
    if (!workflows.startOnce) return;
    const input: CreditExpiryNoticeInput = {
      accountId: notice.accountId,
      grantId: notice.grantId,
      emailKey,
      expiresAtMs: notice.expiresAt.getTime(),
    };
    try {
      await workflows.startOnce(CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE, {
        workflowId: emailKey,
        taskQueue: activityInfo().taskQueue,
        args: [input],
        typedSearchAttributes: [
          { key: AccountId, value: notice.accountId },
          { key: BillingStatus, value: 'sending' },
        ],
      });
    } catch (error) {
      log.warn('expiry notice email not started; the outbox sweep will deliver it', {
        grantId: notice.grantId,
        emailKey,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  return {
    /**
     * Records the expiry notice of every grant now due (CREDIT_EXPIRY_NOTICE ahead of its
     * expiry), each in its own transaction: the notice on the grant and its `credits.expiring`
     * event (credits/expiry-notices.ts), and the email unless the account turned expiry emails
     * off. A grant already noticed (by an overlapping run, or this activity's earlier attempt) is
     * skipped under its lock, so however often this runs each grant is noticed once.
     */
    async sendExpiryNotices(input: ExpiryNoticeSweepInput = {}): Promise<ExpiryNoticeSweepResult> {
      const tally = { notices: 0, emails: 0 };
      if (aheadMs === null) return tally;
      const aheadSeconds = aheadMs / 1000;
      const due = await findGrantsDueForExpiryNotice(sql, {
        aheadSeconds,
        limit: BATCH,
        ...(input.accountIds ? { accountIds: input.accountIds } : {}),
      });
      for (const grantId of due) {
        heartbeat(grantId);
        const recorded = await sql.begin(async (tx) => {
          const notice = await recordExpiryNotice(tx, grantId, { aheadSeconds });
          if (!notice) return null;
          const { expiryEmails } = await findNotificationSettings(tx, notice.accountId);
          if (!expiryEmails) return { notice, emailKey: null };
          const emailKey = emailKeys.expiryNotice(grantId);
          await enqueueAccountEmail(tx, {
            key: emailKey,
            accountId: notice.accountId,
            workflowId: emailKey,
            ...renderCreditExpiryEmail(notice),
          });
          return { notice, emailKey };
        });
        if (!recorded) continue;
        tally.notices += 1;
        log.info('expiry notice recorded', {
          grantId,
          credits: recorded.notice.credits,
          expiresAt: recorded.notice.expiresAt.toISOString(),
          email: recorded.emailKey !== null,
        });
        if (recorded.emailKey === null) continue;
        tally.emails += 1;
        await startDelivery(recorded.notice, recorded.emailKey);
      }
      return tally;
    },
  };
}
