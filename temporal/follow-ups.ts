import type { Client } from '@temporalio/client';
import type { ApiConfig } from '../config/env';
import type { Logger } from '../config/logger';
import type { Sql } from '../db/client';
import { emailKeys } from '../email/templates';
import {
  findUnstartedFollowUps,
  markFollowUpsStarted,
  type FollowUp,
  type FollowUpScope,
} from '../credits/index';
import {
  LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
  TOPUP_WORKFLOW_TYPE,
  topupWorkflowId,
  type LowBalanceNoticeInput,
  type TopupWorkflowInput,
} from '../workflows/topups/contract';
import { AccountId, BillingStatus } from '../workflows/shared/search-attributes';
import { startOnce, type StartOnceOptions, type StartOutcome } from './start-once';

/**
 * The balance follow-ups as work: the credit engine records what a movement caused (a kind and
 * its facts) in the movement's transaction; this module says which workflow does it and starts
 * that workflow, for the API right after a movement commits and for the maintenance sweep (an
 * activity) alike.
 */

/** The workflow that does a follow-up's work: its type, ID and input. */
export interface FollowUpWorkflow {
  workflowType: string;
  workflowId: string;
  input: LowBalanceNoticeInput | TopupWorkflowInput;
}

export function followUpWorkflow(followUp: FollowUp): FollowUpWorkflow {
  switch (followUp.kind) {
    case 'low_balance_notice': {
      const emailKey = emailKeys.lowBalance(followUp.accountId, followUp.facts.notice);
      const input: LowBalanceNoticeInput = {
        accountId: followUp.accountId,
        emailKey,
        notice: followUp.facts,
      };
      // The notice's workflow ID is its email's key: one run, one email, per crossing.
      return { workflowType: LOW_BALANCE_NOTICE_WORKFLOW_TYPE, workflowId: emailKey, input };
    }
    case 'topup': {
      const input: TopupWorkflowInput = { topupId: followUp.facts.topupId, accountId: followUp.accountId };
      return {
        workflowType: TOPUP_WORKFLOW_TYPE,
        workflowId: topupWorkflowId(followUp.facts.topupId),
        input,
      };
    }
  }
}

/** A start-once bound to a client (temporal/start-once.ts); activities reach it through the worker. */
export type StartWorkflowOnce = (workflowType: string, options: StartOnceOptions) => Promise<StartOutcome>;

export interface FollowUpStarter {
  sql: Sql;
  startOnce: StartWorkflowOnce;
  taskQueue: string;
}

/** How many follow-ups are being started at once: each start is one call to Temporal. */
const CONCURRENT_STARTS = 8;

/**
 * Starts the workflows of the unstarted follow-ups in scope, a few at a time, and marks those it
 * started (or found started: their workflow ID ran already). A start that fails leaves its
 * follow-up for the next attempt; the first such error is thrown once the others are marked.
 * Answers how many follow-ups it marked started.
 */
export async function startFollowUps(starter: FollowUpStarter, scope: FollowUpScope): Promise<number> {
  const pending = await findUnstartedFollowUps(starter.sql, scope);
  const started: string[] = [];
  const failures: unknown[] = [];
  let next = 0;
  const worker = async () => {
    for (let followUp = pending[next++]; followUp; followUp = pending[next++]) {
      const { workflowType, workflowId, input } = followUpWorkflow(followUp);
      try {
        await starter.startOnce(workflowType, {
          workflowId,
          taskQueue: starter.taskQueue,
          args: [input],
          typedSearchAttributes: [
            { key: AccountId, value: followUp.accountId },
            { key: BillingStatus, value: 'starting' },
          ],
        });
        started.push(followUp.key);
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_STARTS, pending.length) }, worker));
  await markFollowUpsStarted(starter.sql, started);
  if (failures.length > 0) throw failures[0];
  return started.length;
}

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
    await startFollowUps(
      {
        sql: deps.sql,
        startOnce: (workflowType, options) => startOnce(deps.temporal.workflow, workflowType, options),
        taskQueue: deps.config.temporal.taskQueue,
      },
      { accountId },
    );
  } catch (error) {
    deps.logger.warn(
      { err: error, accountId },
      'balance follow-up not started; the maintenance schedule will',
    );
  }
}
