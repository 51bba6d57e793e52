import type { CheckResult } from './checks';
import type { DrainResult } from './drain';
import { FAULT_LABELS, type FaultKind, type FaultRecord } from './faults';
import type { ExitRecord } from './processes';
import { sum, type SendResult } from './sender';
import type { ChaosOptions } from './options';
import type { UsageSendResult } from './usage-sender';

/** The run's figures: a table for people, the same as JSON for machines. */

export interface ChaosReport {
  passed: boolean;
  options: Omit<ChaosOptions, 'json' | 'keep'>;
  plan: {
    events: number;
    sessions: number;
    accounts: number;
    sessionsWithSecondEvent: number;
    deliveries: number;
    duplicateDeliveries: number;
    duplicatedEvents: number;
    concurrentBursts: number;
  };
  send: Omit<SendResult, 'perEvent'>;
  /** The usage stream (null with --usage-events 0). */
  usage: {
    events: number;
    /** Accounts the events went to (usage accounts and purchase accounts). */
    accounts: number;
    usageAccounts: number;
    features: string[];
    batches: number;
    deliveries: number;
    duplicateDeliveries: number;
    resentEvents: number;
    concurrentBatches: number;
    send: Omit<UsageSendResult, 'perEvent'>;
  } | null;
  faults: Array<Omit<FaultRecord, 'startedAt' | 'endedAt'> & { atS: number }>;
  smtpRefusals: Record<string, number>;
  unexpectedExits: ExitRecord[];
  drain: DrainResult;
  /** From the first delivery. */
  timeline: { lastAckMs: number; faultsOverMs: number };
  checks: CheckResult;
  wallMs: number;
  machine: { cpus: number; node: string };
  workDir: string | null;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function tally(counts: Record<string, number>, limit = 6): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const shown = entries.slice(0, limit).map(([key, count]) => `${key} ×${count}`);
  if (entries.length > limit) shown.push(`… ${entries.length - limit} more`);
  return shown.join(', ') || 'none';
}

function faultSummary(faults: ChaosReport['faults']): string {
  const counts = new Map<FaultKind, number>();
  for (const fault of faults) counts.set(fault.kind, (counts.get(fault.kind) ?? 0) + 1);
  return [...counts.entries()].map(([kind, count]) => `${FAULT_LABELS[kind]} ×${count}`).join(', ');
}

/** How long each kind of fault kept its process away, from the kill to ready again. */
function recoverySummary(faults: ChaosReport['faults']): string {
  const byKind = new Map<FaultKind, number[]>();
  for (const fault of faults) {
    if (fault.kind === 'smtp_refusal') continue;
    byKind.set(fault.kind, [...(byKind.get(fault.kind) ?? []), fault.outageMs]);
  }
  return [...byKind.entries()]
    .map(([kind, outages]) => {
      const low = Math.min(...outages);
      const high = Math.max(...outages);
      const span = low === high ? seconds(low) : `${(low / 1000).toFixed(1)}–${seconds(high)}`;
      return `${kind.split('_')[0]} ${span}`;
    })
    .join(', ');
}

/** The usage stream's figures: what was sent, how it was answered, what the checks found. */
function usageRows(report: ChaosReport): Array<[string, string]> {
  const { usage } = report;
  const checked = report.checks.usage;
  if (!usage || !checked) return [['usage events', 'none (--usage-events 0)']];
  const refused = sum(checked.refusedByCode);
  return [
    [
      'usage events (distinct)',
      `${usage.events}  (${usage.features.join(', ')}; ${usage.accounts} accounts, ${usage.usageAccounts} of them granted credits for usage only)`,
    ],
    [
      'usage deliveries',
      `${usage.deliveries}  (${usage.duplicateDeliveries} duplicates: ${usage.resentEvents} events re-sent in a later batch, ` +
        `${usage.concurrentBatches} of ${usage.batches} batches sent as concurrent bursts)`,
    ],
    [
      'usage requests',
      `${usage.send.requests}, ${usage.send.attempts} attempts  (${sum(usage.send.failures)} failed and retried, ` +
        `at most ${usage.send.maxAttempts} for one request)`,
    ],
    ['usage failed attempts', tally(usage.send.failures)],
    [
      'usage answers',
      `${checked.acceptedAnswers} accepted, ${checked.duplicateAnswers} duplicate, ${refused} refused` +
        `${refused > 0 ? ` (${tally(checked.refusedByCode)})` : ''}, ${checked.conflicts} conflicts`,
    ],
    [
      'usage stored',
      `${checked.stored} events, ${checked.creditsBurned} credits burned; ${checked.refusedEvents} events refused on every delivery ` +
        `(${checked.accountsWithRefusals} of ${checked.accountsUsing} accounts ran short); ` +
        `${checked.acceptedAnswerLost} accepted whose answer was lost (a retry answered duplicate)`,
    ],
    ['usage lost / doubled', `${checked.lost} / ${checked.doubled}`],
    [
      'usage mismatches',
      `${checked.answerMismatches} answers, ${checked.pricingMismatches} (account, feature) prices, ${checked.ledgerMismatches} ledger rows`,
    ],
  ];
}

export function formatReport(report: ChaosReport): string {
  const { plan, send, checks, drain } = report;
  const failedAttempts = sum(send.failures);
  const outages = recoverySummary(report.faults);
  const rows: Array<[string, string]> = [
    [
      'events (distinct IDs)',
      `${plan.events}  (${plan.sessions} sessions, ${plan.sessionsWithSecondEvent} with a second event; ${plan.accounts} accounts)`,
    ],
    [
      'deliveries',
      `${plan.deliveries}  (${plan.duplicateDeliveries} duplicates of ${plan.duplicatedEvents} events; ${plan.concurrentBursts} concurrent bursts)`,
    ],
    [
      'delivery attempts',
      `${send.attempts}  (${failedAttempts} failed and retried, at most ${send.maxAttempts} for one delivery)`,
    ],
    ['failed attempts', tally(send.failures)],
    ['webhook answers', tally(send.answers)],
    ...usageRows(report),
    ['faults injected', faultSummary(report.faults)],
    ['back up (ready) after', outages || 'none'],
    ['SMTP refusals', tally(report.smtpRefusals)],
    [
      'unplanned exits',
      report.unexpectedExits.map((exit) => `${exit.name} (${exit.how})`).join(', ') || 'none',
    ],
    ['lost grants', String(checks.lost)],
    ['doubled grants', String(checks.doubled)],
    ['wrong grants', String(checks.wrongGrant + checks.unexpectedLedgerRows)],
    ['balance mismatches', `${checks.balanceMismatches + checks.booksDrift} of ${checks.accounts} accounts`],
    ['receipts', `${checks.receipts.delivered} of ${checks.receipts.expected} delivered`],
    ['receipts missing', String(checks.receipts.missing)],
    [
      'receipts duplicate',
      `${checks.receipts.duplicateInCrashWindow} in the SMTP-accepted-then-crash window, ${checks.receipts.duplicateUnexplained} outside it`,
    ],
    ['outbox pending / failed', `${checks.outbox.pending} / ${checks.outbox.failed}`],
    [
      'workflows failed / terminated / timed out',
      `${checks.workflows.failed} / ${checks.workflows.terminated} / ${checks.workflows.timedOut}` +
        `  (${checks.workflows.purchase} purchase workflows: ${tally(checks.workflows.byStage)})`,
    ],
    [
      'send time',
      `${seconds(send.sendMs)}; last acknowledgement at ${seconds(report.timeline.lastAckMs)}, ` +
        `faults over at ${seconds(report.timeline.faultsOverMs)}`,
    ],
    ['drain time', `${seconds(drain.ms)} after both${drain.drained ? '' : ' (NOT drained)'}`],
    ['total wall time', seconds(report.wallMs)],
    ['result', report.passed ? 'PASS' : `FAIL (${checks.violations.length} checks failed)`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [
    '',
    `Chaos run — seed ${report.options.seed}, ${report.options.events} events at ${report.options.rate} deliveries/s, ` +
      `${report.options.usageEvents} usage events, ` +
      `${report.machine.cpus} CPUs, node ${report.machine.node}`,
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`),
  ];
  for (const duplicate of checks.receipts.duplicatesInCrashWindow) lines.push(`  · ${duplicate}`);
  for (const violation of checks.violations) {
    lines.push(`  ✗ ${violation.check}: ${violation.count}`);
    for (const example of violation.examples) lines.push(`      ${example}`);
  }
  if (report.workDir) lines.push(`  logs: ${report.workDir}`);
  return `${lines.join('\n')}\n`;
}
