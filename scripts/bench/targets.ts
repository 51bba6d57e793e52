import type { Client } from '@temporalio/client';
import type { Pack } from '../../db/catalog/packs';
import type { Sql } from '../../db/client';
import { createAccounts as createAccountsInEngine } from '../../credits/index';
import { checkoutSession, stripeEvent, webhookRequest } from '../../stripe/fixtures/index';
import { BARE_TASK_QUEUE } from './stack';

/**
 * The three systems the benchmark compares. Each prepares N distinct units of work (its own
 * accounts and checkout sessions), sends one, and says when each was done: for the service the
 * ledger row's commit and the workflow's close, for the bare baseline the workflow's close, for
 * the direct handler its answer (it grants before it answers).
 */

export type SystemName = 'service' | 'bare' | 'direct';

export interface Completion {
  /** Epoch ms each unit was done (ledger row, or workflow closed), by index; NaN if never. */
  doneAt: number[];
  /** The service only: epoch ms each purchase workflow closed (after its receipt). */
  closedAt?: number[];
  /** Workflow IDs, for the history sample. */
  workflowIds: string[];
}

export interface Target {
  name: SystemName;
  prepare(count: number, phase: string): Promise<void>;
  fire(index: number): Promise<string>;
  /** Waits until every unit sent is done (or the deadline passes). */
  complete(sentAt: number[], acked: boolean[], ackMs: number[], deadline: number): Promise<Completion>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createAccounts(sql: Sql, ids: string[]): Promise<void> {
  await createAccountsInEngine(
    sql,
    ids.map((id) => ({ id, email: `${id}@bench.invalid` })),
  );
}

function purchasePayloads(phase: string, prefix: string, count: number, pack: Pack) {
  const accounts = Array.from({ length: count }, (_, i) => `bench_${phase}_${i}`);
  const events = accounts.map((accountId, i) =>
    stripeEvent(
      'checkout.session.completed',
      checkoutSession({
        accountId,
        packId: pack.id,
        amountTotal: pack.priceCents,
        currency: pack.currency,
        metadata: { credits: String(pack.credits) },
      }),
      { id: `${prefix}_${phase}_${i}` },
    ),
  );
  return {
    accounts,
    workflowIds: events.map((event) => event.id),
    sessionIds: events.map((event) => String((event.data.object as { id: string }).id)),
    payloads: events.map((event) => JSON.stringify(event)),
  };
}

async function answerOf(response: Response, expected: string): Promise<string> {
  const text = await response.text();
  let answer = 'unparsed';
  try {
    const body = JSON.parse(text) as { status?: unknown; error?: { code?: unknown } };
    const said = body.status ?? body.error?.code;
    if (typeof said === 'string') answer = said;
  } catch {
    // keep 'unparsed'
  }
  return response.status === 200 && answer === expected ? 'ok' : `${response.status} ${answer}`;
}

/** Epoch ms of the ledger row of each session, polled until all are there or the deadline. */
async function ledgerTimes(
  sql: Sql,
  sessionIds: string[],
  want: number,
  deadline: number,
): Promise<Map<string, number>> {
  for (;;) {
    const [row] = await sql<[{ n: string }]>`
      SELECT count(*) AS n FROM credit_ledger WHERE business_key = ANY(${sessionIds}::text[])`;
    if (Number(row?.n ?? 0) >= want || Date.now() > deadline) break;
    await sleep(500);
  }
  const rows = await sql<Array<{ key: string; at: string }>>`
    SELECT business_key AS key, (extract(epoch FROM created_at) * 1000)::float8 AS at
    FROM credit_ledger WHERE business_key = ANY(${sessionIds}::text[])`;
  return new Map(rows.map((row) => [row.key, Number(row.at)]));
}

/** Close time of each workflow of a type started since `since`, once none of them runs any more. */
async function closeTimes(
  client: Client,
  workflowType: string,
  since: number,
  want: number,
  deadline: number,
): Promise<Map<string, number>> {
  const base = `WorkflowType = '${workflowType}' AND StartTime >= '${new Date(since).toISOString()}'`;
  for (;;) {
    const [running, closed] = await Promise.all([
      client.workflow.count(`${base} AND ExecutionStatus = 'Running'`),
      client.workflow.count(`${base} AND ExecutionStatus != 'Running'`),
    ]);
    if ((running.count === 0 && closed.count >= want) || Date.now() > deadline) break;
    await sleep(1000);
  }
  const times = new Map<string, number>();
  for await (const execution of client.workflow.list({
    query: `${base} AND ExecutionStatus = 'Completed'`,
  })) {
    if (execution.closeTime) times.set(execution.workflowId, execution.closeTime.getTime());
  }
  return times;
}

export function serviceTarget(deps: {
  sql: Sql;
  client: Client;
  url: string;
  secret: string;
  pack: Pack;
}): Target {
  let batch = purchasePayloads('none', 'evt', 0, deps.pack);
  return {
    name: 'service',
    async prepare(count, phase) {
      batch = purchasePayloads(phase, 'evt_bench', count, deps.pack);
      await createAccounts(deps.sql, batch.accounts);
    },
    async fire(index) {
      const response = await fetch(deps.url, webhookRequest(batch.payloads[index] ?? '', deps.secret));
      return answerOf(response, 'started');
    },
    async complete(sentAt, acked, _ackMs, deadline) {
      const want = acked.filter(Boolean).length;
      const ledger = await ledgerTimes(deps.sql, batch.sessionIds, want, deadline);
      const closed = await closeTimes(deps.client, 'purchaseWorkflow', Math.min(...sentAt), want, deadline);
      return {
        doneAt: batch.sessionIds.map((id) => ledger.get(id) ?? Number.NaN),
        closedAt: batch.workflowIds.map((id) => closed.get(id) ?? Number.NaN),
        workflowIds: batch.workflowIds,
      };
    },
  };
}

export function bareTarget(deps: { client: Client }): Target {
  let ids: string[] = [];
  return {
    name: 'bare',
    prepare(count, phase) {
      ids = Array.from({ length: count }, (_, i) => `bare_${phase}_${i}`);
      return Promise.resolve();
    },
    async fire(index) {
      await deps.client.workflow.start('benchBareWorkflow', {
        taskQueue: BARE_TASK_QUEUE,
        workflowId: ids[index] ?? '',
        args: [],
      });
      return 'ok';
    },
    async complete(sentAt, acked, _ackMs, deadline) {
      const want = acked.filter(Boolean).length;
      const closed = await closeTimes(deps.client, 'benchBareWorkflow', Math.min(...sentAt), want, deadline);
      return { doneAt: ids.map((id) => closed.get(id) ?? Number.NaN), workflowIds: ids };
    },
  };
}

export function directTarget(deps: { sql: Sql; url: string; secret: string; pack: Pack }): Target {
  let batch = purchasePayloads('none', 'evt', 0, deps.pack);
  return {
    name: 'direct',
    async prepare(count, phase) {
      batch = purchasePayloads(`d${phase}`, 'evt_direct', count, deps.pack);
      await createAccounts(deps.sql, batch.accounts);
    },
    async fire(index) {
      const response = await fetch(deps.url, webhookRequest(batch.payloads[index] ?? '', deps.secret));
      return answerOf(response, 'granted');
    },
    complete(sentAt, acked, ackMs) {
      // Granted before it answered: done when answered.
      return Promise.resolve({
        doneAt: sentAt.map((at, i) => (acked[i] ? at + (ackMs[i] ?? 0) : Number.NaN)),
        workflowIds: [],
      });
    },
  };
}
