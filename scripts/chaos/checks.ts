import type { Client } from '@temporalio/client';
import type { Sql } from '../../db/client';
import { findBalanceDrift } from '../../credits/index';
import { emailKeys } from '../../email/templates';
import { PURCHASE_WORKFLOWS } from './drain';
import type { FaultRecord } from './faults';
import type { AcceptedMail } from './mail-sink';
import type { ExitRecord } from './processes';
import type { SendResult } from './sender';
import { checkUsage, type UsageCheckResult } from './usage-checks';
import type { UsageSendResult } from './usage-sender';
import type { UsagePlan } from './usage-workload';
import type { Plan } from './workload';

/**
 * What must hold after the run, whatever was killed when: every sale granted exactly once and
 * for what was sold, every balance equal to its ledger and to what was sold (and granted to the
 * usage accounts) less what usage burned, one receipt per grant, an empty outbox, and no workflow
 * that failed, was terminated or timed out. The usage stream's own checks are usage-checks.ts.
 *
 * A receipt may arrive twice in one case the design accepts: the SMTP server accepted it, and
 * the worker or PostgreSQL crashed before the outbox row was marked sent, so the retry sends it
 * again (invariant 5: at most once per acceptance). The outbox row is locked while it is handed
 * over and marked sent in the same transaction, so a second acceptance means the first one's
 * commit never happened; it is explained when a crash of the worker or PostgreSQL lies between
 * the two acceptances (and not before the first). Any other repeat is a defect.
 */

// A message a killed worker had already written to its socket is still read, and accepted, by
// the sink a moment after the kill.
const AFTER_CRASH_SLACK_MS = 1_000;
const EXAMPLES = 5;
const EXPECTED_STAGES = ['completed', 'already_granted', 'awaiting_payment'];

export interface Violation {
  check: string;
  count: number;
  examples: string[];
}

export interface CheckResult {
  sessions: number;
  granted: number;
  lost: number;
  doubled: number;
  wrongGrant: number;
  unexpectedLedgerRows: number;
  purchasesNotCompleted: number;
  accounts: number;
  balanceMismatches: number;
  booksDrift: number;
  receipts: {
    expected: number;
    delivered: number;
    missing: number;
    duplicateInCrashWindow: number;
    /** Which receipts, and the crash between their two acceptances. */
    duplicatesInCrashWindow: string[];
    duplicateUnexplained: number;
    unmatched: number;
  };
  outbox: { pending: number; failed: number; sent: number };
  workflows: {
    purchase: number;
    running: number;
    failed: number;
    terminated: number;
    timedOut: number;
    canceled: number;
    byStage: Record<string, number>;
    unexpectedStage: number;
  };
  webhook: { undeliveredEvents: number; startedTwice: number };
  /** Null when the run sent no usage. */
  usage: Omit<UsageCheckResult, 'violations'> | null;
  violations: Violation[];
}

const messageIdPattern = /^<outbox-(\d+)@/;

function group<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = groups.get(k);
    if (list) list.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

export async function checkRun(input: {
  plan: Plan;
  send: SendResult;
  usage: { plan: UsagePlan; send: UsageSendResult } | null;
  accepted: AcceptedMail[];
  faults: FaultRecord[];
  unexpectedExits: ExitRecord[];
  sql: Sql;
  client: Client;
}): Promise<CheckResult> {
  const { plan, sql, client } = input;
  const violations: Violation[] = [];
  const flag = (check: string, examples: string[], count = examples.length) => {
    if (count > 0) violations.push({ check, count, examples: examples.slice(0, EXAMPLES) });
  };

  // --- usage: every event once, as answered, priced once (usage-checks.ts) ----------------------
  const usage = input.usage ? await checkUsage({ ...input.usage, sql }) : null;
  for (const violation of usage?.result.violations ?? []) flag(violation.check, violation.examples);
  const usageAccounts = new Set(usage?.accounts ?? []);

  // --- the ledger: one row per sale, for what was sold, to whom it was sold -------------------
  const ledger = await sql<{ business_key: string; account_id: string; delta: string; kind: string }[]>`
    SELECT business_key, account_id, delta::text AS delta, kind FROM credit_ledger`;
  const rowsByKey = group(ledger, (row) => row.business_key);
  const sessionIds = new Set(plan.sales.map((sale) => sale.sessionId));
  const lost: string[] = [];
  const doubled: string[] = [];
  const wrong: string[] = [];
  for (const sale of plan.sales) {
    const rows = rowsByKey.get(sale.sessionId) ?? [];
    if (rows.length === 0) lost.push(sale.sessionId);
    if (rows.length > 1) doubled.push(`${sale.sessionId} ×${rows.length}`);
    for (const row of rows) {
      if (row.account_id !== sale.accountId || Number(row.delta) !== sale.credits) {
        wrong.push(
          `${sale.sessionId}: ${row.delta} to ${row.account_id}, sold ${sale.credits} to ${sale.accountId}`,
        );
      }
    }
  }
  // Usage rows and the usage accounts' grants are usage-checks.ts's to check.
  const unexpected = ledger.filter(
    (row) =>
      !sessionIds.has(row.business_key) &&
      !(usage && row.kind === 'usage') &&
      !(usageAccounts.has(row.account_id) && row.kind === 'promotional_grant'),
  );
  flag('sale never granted (lost)', lost);
  flag('sale granted more than once', doubled);
  flag('grant differs from what was sold', wrong);
  flag(
    'ledger row for no sale',
    unexpected.map((row) => `${row.business_key} ${row.delta}`),
  );

  const purchases = await sql<{ id: string; status: string }[]>`SELECT id, status FROM purchases`;
  const notCompleted = purchases.filter((row) => sessionIds.has(row.id) && row.status !== 'completed');
  const purchaseIds = new Set(purchases.map((row) => row.id));
  const unrecorded = plan.sales
    .filter((sale) => !purchaseIds.has(sale.sessionId))
    .map((sale) => sale.sessionId);
  flag('purchase not recorded as completed', [
    ...notCompleted.map((row) => `${row.id}: ${row.status}`),
    ...unrecorded.map((id) => `${id}: no purchase row`),
  ]);

  // --- balances: stored = Σ ledger = what was sold (and granted) less what usage burned; and the
  // grants agree (verify:ledger) ------------------------------------------------------------------
  const expected = new Map(
    [...plan.accounts.map((account) => account.id), ...usageAccounts].map((id) => [id, 0]),
  );
  for (const sale of plan.sales)
    expected.set(sale.accountId, (expected.get(sale.accountId) ?? 0) + sale.credits);
  for (const [accountId, credits] of usage?.granted ?? [])
    expected.set(accountId, (expected.get(accountId) ?? 0) + credits);
  for (const [accountId, credits] of usage?.burned ?? [])
    expected.set(accountId, (expected.get(accountId) ?? 0) - credits);
  const ledgerSum = new Map<string, number>();
  for (const row of ledger)
    ledgerSum.set(row.account_id, (ledgerSum.get(row.account_id) ?? 0) + Number(row.delta));
  const balances = await sql<{ account_id: string; balance: string }[]>`
    SELECT account_id, balance::text AS balance FROM credit_balances`;
  const balanceOf = new Map(balances.map((row) => [row.account_id, Number(row.balance)]));
  const mismatches: string[] = [];
  for (const [accountId, due] of expected) {
    const balance = balanceOf.get(accountId);
    const sum = ledgerSum.get(accountId) ?? 0;
    if (balance !== due || sum !== due) {
      const spent = usage?.burned.get(accountId) ?? 0;
      mismatches.push(
        `${accountId}: balance ${String(balance)}, Σ ledger ${sum}, sold and granted ${due + spent} less burned ${spent}`,
      );
    }
  }
  flag('balance differs from Σ ledger or from what was sold less what usage burned', mismatches);
  const drift = await findBalanceDrift(sql);
  flag(
    'books disagree (balance, Σ ledger, Σ grants)',
    drift.map((row) => `${row.accountId}: ${row.balance} / ${row.ledgerSum} / ${row.grantSum}`),
  );

  // --- receipts: one per grant, as handed to the SMTP server ----------------------------------
  const outbox = await sql<{ id: string; key: string; status: string }[]>`
    SELECT id::text AS id, key, status FROM email_outbox`;
  const acceptedByRow = group(
    input.accepted.filter((mail) => mail.messageId !== null && messageIdPattern.test(mail.messageId)),
    (mail) => messageIdPattern.exec(mail.messageId ?? '')?.[1] ?? '',
  );
  const outboxRowIds = new Set(outbox.map((row) => row.id));
  const unmatched = input.accepted.filter(
    (mail) => !outboxRowIds.has(messageIdPattern.exec(mail.messageId ?? '')?.[1] ?? ''),
  );
  const rowByKey = new Map(outbox.map((row) => [row.key, row]));
  // Each crash spans from its signal to the moment its process was gone.
  const crashes = [
    ...input.faults
      .filter((fault) => fault.kind === 'worker_kill' || fault.kind === 'postgres_restart')
      .map((fault) => ({ what: fault.kind, from: fault.startedAt, to: fault.goneAt ?? fault.startedAt })),
    ...input.unexpectedExits
      .filter((exit) => exit.name === 'worker' || exit.name === 'postgres')
      .map((exit) => ({ what: `${exit.name} exit`, from: exit.at, to: exit.at })),
  ];
  const crashBetween = (earlier: number, later: number) =>
    crashes.find((crash) => crash.from <= later && earlier <= crash.to + AFTER_CRASH_SLACK_MS);
  const missing: string[] = [];
  const inWindow: string[] = [];
  const unexplained: string[] = [];
  let delivered = 0;
  for (const sale of plan.sales) {
    const row = rowByKey.get(emailKeys.receipt(sale.sessionId));
    const times = (row ? (acceptedByRow.get(row.id) ?? []) : []).map((mail) => mail.at).sort((a, b) => a - b);
    if (times.length === 0) {
      missing.push(`${sale.sessionId}: ${row ? `outbox ${row.status}, never accepted` : 'no outbox row'}`);
      continue;
    }
    delivered += 1;
    times.slice(1).forEach((later, index) => {
      const label = `${sale.sessionId} (outbox ${row?.id ?? '?'}) accepted ${times.length}×`;
      const crash = crashBetween(times[index] ?? later, later);
      if (crash) inWindow.push(`${label}, ${crash.what} in between`);
      else unexplained.push(label);
    });
  }
  flag('receipt missing', missing);
  flag('receipt sent twice outside the SMTP-accepted-then-crash window', unexplained);
  flag(
    'mail the outbox never queued',
    unmatched.map((mail) => `${mail.messageId ?? 'no Message-ID'} to ${mail.to}`),
  );

  const pending = outbox.filter((row) => row.status === 'pending');
  const failed = outbox.filter((row) => row.status === 'failed');
  flag(
    'outbox row still pending',
    pending.map((row) => row.key),
  );
  flag(
    'outbox row failed',
    failed.map((row) => row.key),
  );

  // --- workflows: all closed, none failed, terminated or timed out; each ended as expected -----
  const count = async (query: string) => (await client.workflow.count(query)).count;
  const ids = async (query: string) => {
    const found: string[] = [];
    for await (const execution of client.workflow.list({ query })) {
      const stage = execution.searchAttributes.PurchaseStatus?.[0];
      found.push(
        `${execution.workflowId} ${execution.type} ${execution.status.name}${stage ? ` ${String(stage)}` : ''}`,
      );
      if (found.length >= EXAMPLES) break;
    }
    return found;
  };
  const statusCount = async (status: string) => {
    const query = `ExecutionStatus = '${status}'`;
    const n = await count(query);
    flag(`workflow ${status.toLowerCase()}`, n > 0 ? await ids(query) : [], n);
    return n;
  };
  const running = await count(`${PURCHASE_WORKFLOWS} AND ExecutionStatus = 'Running'`);
  flag(
    'purchase workflow still running',
    running > 0 ? await ids(`${PURCHASE_WORKFLOWS} AND ExecutionStatus = 'Running'`) : [],
    running,
  );
  const failedWorkflows = await statusCount('Failed');
  const terminated = await statusCount('Terminated');
  const timedOut = await statusCount('TimedOut');
  const canceled = await statusCount('Canceled');
  const purchaseWorkflows = await count(PURCHASE_WORKFLOWS);
  if (purchaseWorkflows !== plan.events.length) {
    flag(`purchase workflows: ${purchaseWorkflows}, events: ${plan.events.length}`, [], 1);
  }
  const byStage: Record<string, number> = {};
  for (const stage of EXPECTED_STAGES) {
    byStage[stage] = await count(
      `${PURCHASE_WORKFLOWS} AND ExecutionStatus = 'Completed' AND PurchaseStatus = '${stage}'`,
    );
  }
  const closed = await count(`${PURCHASE_WORKFLOWS} AND ExecutionStatus = 'Completed'`);
  const unexpectedStage = closed - EXPECTED_STAGES.reduce((total, stage) => total + (byStage[stage] ?? 0), 0);
  const stageList = EXPECTED_STAGES.map((stage) => `'${stage}'`).join(', ');
  flag(
    'purchase workflow ended in another stage',
    unexpectedStage > 0
      ? await ids(
          `${PURCHASE_WORKFLOWS} AND ExecutionStatus = 'Completed' AND PurchaseStatus NOT IN (${stageList})`,
        )
      : [],
    unexpectedStage,
  );
  if ((byStage.completed ?? 0) !== plan.sales.length) {
    flag(
      `purchase workflows that granted and sent a receipt: ${byStage.completed ?? 0}, sales: ${plan.sales.length}`,
      [],
      1,
    );
  }

  // --- the webhook: every event acknowledged, none started twice --------------------------------
  const undelivered = plan.events.filter(
    (_, index) => Object.keys(input.send.perEvent[index]?.answers ?? {}).length === 0,
  );
  const startedTwice = plan.events.filter(
    (_, index) => (input.send.perEvent[index]?.answers.started ?? 0) > 1,
  );
  flag(
    'event never acknowledged',
    undelivered.map((event) => event.id),
  );
  flag(
    'event started twice',
    startedTwice.map((event) => event.id),
  );

  return {
    sessions: plan.sales.length,
    granted: plan.sales.length - lost.length,
    lost: lost.length,
    doubled: doubled.length,
    wrongGrant: wrong.length,
    unexpectedLedgerRows: unexpected.length,
    purchasesNotCompleted: notCompleted.length + unrecorded.length,
    accounts: expected.size,
    balanceMismatches: mismatches.length,
    booksDrift: drift.length,
    receipts: {
      expected: plan.sales.length,
      delivered,
      missing: missing.length,
      duplicateInCrashWindow: inWindow.length,
      duplicatesInCrashWindow: inWindow,
      duplicateUnexplained: unexplained.length,
      unmatched: unmatched.length,
    },
    outbox: {
      pending: pending.length,
      failed: failed.length,
      sent: outbox.filter((row) => row.status === 'sent').length,
    },
    workflows: {
      purchase: purchaseWorkflows,
      running,
      failed: failedWorkflows,
      terminated,
      timedOut,
      canceled,
      byStage,
      unexpectedStage,
    },
    webhook: { undeliveredEvents: undelivered.length, startedTwice: startedTwice.length },
    usage: usage ? (({ violations: _violations, ...figures }) => figures)(usage.result) : null,
    violations,
  };
}
