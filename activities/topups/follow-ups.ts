import { activityInfo, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { enqueueAccountEmail } from '../../db/email/outbox';
import { findUnstartedFollowUps, markFollowUpsStarted } from '../../credits/index';
import { renderLowBalanceEmail } from '../../email/topup-templates';
import { followUpWorkflow, startFollowUps, type FollowUpWorkflow } from '../../temporal/follow-ups';
import type { LowBalanceNoticeInput } from '../../workflows/topups/contract';
import type { ActivityDependencies } from '../dependencies';

/** The oldest unstarted follow-ups one maintenance run starts; the next run takes the rest. */
const SWEEP_BATCH = 200;

/** What the follow-up activities use: the database and Temporal's starts. */
export type FollowUpActivityDependencies = Pick<ActivityDependencies, 'sql' | 'workflows'>;

/** Activities of what a balance movement left to do: the notice's email, and the sweep's starts. */
export function createFollowUpActivities<D extends FollowUpActivityDependencies>({ sql, workflows }: D) {
  return {
    /**
     * Queues the low-balance notice's email, rendered from what the crossing reported, under the
     * notice's key: once, however often it is retried or the workflow is started.
     */
    async queueLowBalanceNotice(input: LowBalanceNoticeInput): Promise<void> {
      // A follow-up recorded before notices were queued here had its email queued with it.
      if (!input.notice) return;
      await enqueueAccountEmail(sql, {
        key: input.emailKey,
        accountId: input.accountId,
        workflowId: input.emailKey,
        ...renderLowBalanceEmail({ accountId: input.accountId, ...input.notice }),
      });
    },

    /**
     * The maintenance sweep: starts the follow-ups nobody started (a crash between a movement's
     * commit and its start, or a movement made where nothing starts them), on this worker's task
     * queue, the way the API starts them after a debit. `accountIds` limits it to those accounts.
     */
    async startUnstartedBalanceFollowUps(input: { accountIds?: string[] } = {}): Promise<number> {
      if (!workflows.startOnce) {
        throw ApplicationFailure.nonRetryable('this worker was built without a way to start workflows');
      }
      // The starts answer one by one, in a few calls at a time: alive while they do.
      const beat = setInterval(() => heartbeat(), 5_000);
      let started: number;
      try {
        started = await startFollowUps(
          { sql, startOnce: workflows.startOnce, taskQueue: activityInfo().taskQueue },
          { limit: SWEEP_BATCH, ...(input.accountIds ? { accountIds: input.accountIds } : {}) },
        );
      } finally {
        clearInterval(beat);
      }
      if (started > 0) log.info('balance follow-ups started by the sweep', { started });
      return started;
    },

    /**
     * What maintenance runs recorded before the sweep became one activity read, then start as
     * child workflows (workflows/topups/topup.ts); kept for those runs.
     */
    async findUnstartedBalanceFollowUps(): Promise<Array<FollowUpWorkflow & { accountId: string }>> {
      const pending = await findUnstartedFollowUps(sql, { limit: SWEEP_BATCH });
      return pending.map((followUp) => ({ accountId: followUp.accountId, ...followUpWorkflow(followUp) }));
    },

    /** Marks, by workflow ID, the follow-ups such a run started (a follow-up's key is its workflow ID). */
    async markBalanceFollowUpsStarted(input: { workflowIds: string[] }): Promise<void> {
      await markFollowUpsStarted(sql, input.workflowIds);
    },
  };
}
