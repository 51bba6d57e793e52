import type { Client } from '@temporalio/client';
import type { ApiConfig } from '../config/env';
import type { Logger } from '../config/logger';
import type { Sql } from '../db/client';
import { findUnstartedFollowUps, markFollowUpsStarted } from '../credits/index';
import { AccountId, BillingStatus } from '../workflows/shared/search-attributes';
import { startOnce } from './start-once';

export interface BalanceFollowUpDependencies {
  sql: Sql;
  temporal: Client;
  config: Pick<ApiConfig, 'temporal'>;
  logger: Logger;
}

/**
 * Starts what a committed movement of the account asked for (a low-balance notice, a top-up):
 * the rows were written in the movement's transaction, so nothing is lost if this fails or the
 * process dies first; the maintenance schedule starts whatever is left. Never fails the caller.
 */
export async function startBalanceFollowUps(
  deps: BalanceFollowUpDependencies,
  accountId: string,
): Promise<void> {
  try {
    const pending = await findUnstartedFollowUps(deps.sql, { accountId });
    if (pending.length === 0) return;
    const started: string[] = [];
    for (const followUp of pending) {
      await startOnce(deps.temporal.workflow, followUp.workflowType, {
        workflowId: followUp.workflowId,
        taskQueue: deps.config.temporal.taskQueue,
        args: [followUp.input],
        typedSearchAttributes: [
          { key: AccountId, value: followUp.accountId },
          { key: BillingStatus, value: 'starting' },
        ],
      });
      started.push(followUp.workflowId);
    }
    await markFollowUpsStarted(deps.sql, started);
  } catch (error) {
    deps.logger.warn(
      { err: error, accountId },
      'balance follow-up not started; the maintenance schedule will',
    );
  }
}
