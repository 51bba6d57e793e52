import type { Client } from '@temporalio/client';
import type { Sql } from '../../db/client';
import { sleep } from './processes';

/**
 * After the last delivery: waits until every purchase workflow has closed and no email is left
 * pending in the outbox, or the deadline passes. Twice in a row, two seconds apart, so that a
 * moment between a workflow's last activity and its close is not mistaken for the end.
 */

export const PURCHASE_WORKFLOWS = `WorkflowType = 'purchaseWorkflow'`;

export interface DrainResult {
  drained: boolean;
  ms: number;
  workflows: number;
  running: number;
  pendingEmails: number;
}

async function countOf(client: Client, query: string): Promise<number> {
  return (await client.workflow.count(query)).count;
}

export async function drain(options: {
  client: Client;
  sql: Sql;
  /** One workflow per distinct event. */
  expectedWorkflows: number;
  timeoutMs: number;
  progress: (line: string) => void;
}): Promise<DrainResult> {
  const started = Date.now();
  let quietPolls = 0;
  let lastReport = 0;
  let state = { workflows: 0, running: 0, pendingEmails: 0 };
  for (;;) {
    try {
      const [workflows, running, [pending]] = await Promise.all([
        countOf(options.client, PURCHASE_WORKFLOWS),
        countOf(options.client, `${PURCHASE_WORKFLOWS} AND ExecutionStatus = 'Running'`),
        options.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM email_outbox WHERE status = 'pending'`,
      ]);
      state = { workflows, running, pendingEmails: pending?.n ?? 0 };
      const done = workflows >= options.expectedWorkflows && running === 0 && state.pendingEmails === 0;
      quietPolls = done ? quietPolls + 1 : 0;
      if (quietPolls >= 2) return { drained: true, ms: Date.now() - started, ...state };
    } catch (error) {
      // Right after the faults a server may still be catching up; the next poll tells.
      options.progress(`drain: ${(error as Error).message}`);
    }
    if (Date.now() - started > options.timeoutMs)
      return { drained: false, ms: Date.now() - started, ...state };
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      options.progress(
        `draining: ${state.running} purchase workflows running, ${state.pendingEmails} emails pending ` +
          `(${state.workflows}/${options.expectedWorkflows} workflows known)`,
      );
    }
    await sleep(2000);
  }
}
