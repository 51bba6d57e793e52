import { summarizeLatencies, type LatencySummary } from '../bench-support';
import type { Shot } from './load';
import type { HistoryProfile, ProcessUsage } from './measure';
import type { Completion, SystemName } from './targets';

/** One phase's figures: one system under one load. */
export interface PhaseResult {
  system: SystemName;
  /** "open 50/s" or "closed 50". */
  load: string;
  mode: 'open' | 'closed';
  offeredPerSecond: number | null;
  concurrency: number | null;
  sent: number;
  acknowledged: number;
  errors: Record<string, number>;
  /** Sends per second actually achieved (the sender may lag on a busy machine). */
  sentPerSecond: number;
  ackMs: LatencySummary;
  /** Send → done (service: ledger row committed; bare: workflow closed; direct: answered). */
  endToEndMs: LatencySummary;
  /** Service only: send → purchase workflow closed, receipt sent. */
  workflowCloseMs: LatencySummary | null;
  done: number;
  /** Done per second, from the first send to the last done. */
  donePerSecond: number;
  wallMs: number;
  processes: Record<string, ProcessUsage>;
  /** Temporal server counters over the phase, per unit of work. */
  temporal: { persistenceRequestsPerUnit: number | null; topPersistenceOperations: Record<string, number> };
  histories: HistoryProfile | null;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

export function phaseResult(input: {
  system: SystemName;
  mode: 'open' | 'closed';
  offeredPerSecond: number | null;
  concurrency: number | null;
  shots: Shot[];
  completion: Completion;
  processes: Record<string, ProcessUsage>;
  persistence: Map<string, number>;
  histories: HistoryProfile | null;
}): PhaseResult {
  const { shots, completion } = input;
  const ok = shots.map((shot) => shot.outcome === 'ok');
  const errors: Record<string, number> = {};
  for (const shot of shots) if (shot.outcome !== 'ok') errors[shot.outcome] = (errors[shot.outcome] ?? 0) + 1;
  const firstSent = Math.min(...shots.map((shot) => shot.sentAt));
  const lastSent = Math.max(...shots.map((shot) => shot.sentAt));
  const e2e: number[] = [];
  const close: number[] = [];
  let lastDone = firstSent;
  shots.forEach((shot, i) => {
    const done = completion.doneAt[i] ?? Number.NaN;
    if (Number.isFinite(done)) {
      e2e.push(done - shot.sentAt);
      lastDone = Math.max(lastDone, done);
    }
    const closed = completion.closedAt?.[i];
    if (closed !== undefined && Number.isFinite(closed)) close.push(closed - shot.sentAt);
  });
  const totalPersistence = input.persistence.get('persistence_requests');
  const top = [...input.persistence]
    .filter(([key]) => key.startsWith('persistence_requests:'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([key, value]): [string, number] => [
      key.slice('persistence_requests:'.length),
      round(value / Math.max(1, e2e.length)),
    ]);
  return {
    system: input.system,
    load: input.mode === 'open' ? `open ${input.offeredPerSecond}/s` : `closed ${input.concurrency}`,
    mode: input.mode,
    offeredPerSecond: input.offeredPerSecond,
    concurrency: input.concurrency,
    sent: shots.length,
    acknowledged: ok.filter(Boolean).length,
    errors,
    sentPerSecond: shots.length > 1 ? round((shots.length - 1) / ((lastSent - firstSent) / 1000)) : 0,
    ackMs: summarizeLatencies(shots.filter((shot) => shot.outcome === 'ok').map((shot) => shot.ackMs)),
    endToEndMs: summarizeLatencies(e2e),
    workflowCloseMs: completion.closedAt ? summarizeLatencies(close) : null,
    done: e2e.length,
    donePerSecond: round(e2e.length / Math.max(0.001, (lastDone - firstSent) / 1000)),
    wallMs: Math.round(lastDone - firstSent),
    processes: input.processes,
    temporal: {
      persistenceRequestsPerUnit:
        totalPersistence === undefined ? null : round(totalPersistence / Math.max(1, e2e.length)),
      topPersistenceOperations: Object.fromEntries(top),
    },
    histories: input.histories,
  };
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const fmt = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);

const SYSTEM_LABEL: Record<SystemName, string> = {
  service: 'service',
  bare: 'bare Temporal',
  direct: 'direct handler',
};

export interface BenchReport {
  engine: string;
  startedAt: string;
  machine: { cpus: number; loadAverage1m: [number, number]; node: string };
  settings: Record<string, unknown>;
  phases: PhaseResult[];
  ratios: Array<{
    load: string;
    servicePerBareDone: number | null;
    serviceAckP99PerBare: number | null;
    serviceE2eP50PerBare: number | null;
    servicePerDirectDone: number | null;
  }>;
}

export function ratios(phases: PhaseResult[]): BenchReport['ratios'] {
  const loads = [...new Set(phases.map((phase) => phase.load))];
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
      ? null
      : round(a / b, 2);
  return loads.map((load) => {
    const of = (system: SystemName) => phases.find((phase) => phase.load === load && phase.system === system);
    const service = of('service');
    const bare = of('bare');
    const direct = of('direct');
    return {
      load,
      servicePerBareDone: ratio(service?.donePerSecond, bare?.donePerSecond),
      serviceAckP99PerBare: ratio(service?.ackMs.p99, bare?.ackMs.p99),
      serviceE2eP50PerBare: ratio(service?.endToEndMs.p50, bare?.endToEndMs.p50),
      servicePerDirectDone: ratio(service?.donePerSecond, direct?.donePerSecond),
    };
  });
}

export function formatReport(report: BenchReport): string {
  const out: string[] = [];
  out.push(
    `npm run bench — engine ${report.engine}, ${report.machine.cpus} CPUs, load average ` +
      `${report.machine.loadAverage1m[0]} → ${report.machine.loadAverage1m[1]} (1 min), node ${report.machine.node}, ${report.startedAt}`,
  );
  out.push('');
  const usage = (phase: PhaseResult, name: string) => {
    const u = phase.processes[name];
    if (!u) return '—';
    // PostgreSQL's backends share its buffers: their summed RSS would count them many times.
    return name === 'postgres' ? `${fmt(u.cpuPercent)}%` : `${fmt(u.cpuPercent)}% ${u.rssMaxMb}M`;
  };
  out.push(
    table(
      [
        'system',
        'load',
        'sent',
        'ok',
        'sent/s',
        'ack p50',
        'p90',
        'p99',
        'e2e p50',
        'e2e p99',
        'done/s',
        'api/handler',
        'worker',
        'temporal',
        'postgres',
      ],
      report.phases.map((phase) => [
        SYSTEM_LABEL[phase.system],
        phase.load,
        String(phase.sent),
        String(phase.acknowledged),
        fmt(phase.sentPerSecond, 1),
        fmt(phase.ackMs.p50, 1),
        fmt(phase.ackMs.p90, 1),
        fmt(phase.ackMs.p99, 1),
        fmt(phase.endToEndMs.p50),
        fmt(phase.endToEndMs.p99),
        fmt(phase.donePerSecond, 1),
        usage(phase, phase.system === 'direct' ? 'direct' : 'api'),
        usage(phase, phase.system === 'bare' ? 'bare-worker' : 'worker'),
        usage(phase, 'temporal'),
        usage(phase, 'postgres'),
      ]),
    ),
  );
  out.push('');
  out.push(
    'ack: request → answer (service: signature, routing, Temporal accepting the start; bare: client.workflow.start;',
  );
  out.push(
    'direct: signature + the grant transaction). e2e: send → ledger row committed (service), workflow closed (bare), answered (direct).',
  );
  out.push(
    'done/s: units done ÷ (last done − first send). Processes: average CPU in % of one core over the phase, and peak RSS (with children; none for PostgreSQL).',
  );
  out.push('');
  out.push(
    table(
      [
        'load',
        'service ÷ bare done/s',
        'ack p99 service ÷ bare',
        'e2e p50 service ÷ bare',
        'service ÷ direct done/s',
      ],
      report.ratios.map((r) => [
        r.load,
        fmt(r.servicePerBareDone, 2),
        fmt(r.serviceAckP99PerBare, 2),
        fmt(r.serviceE2eP50PerBare, 2),
        fmt(r.servicePerDirectDone, 2),
      ]),
    ),
  );
  const profiled = report.phases.filter((phase) => phase.histories);
  if (profiled.length > 0) {
    out.push('');
    out.push('Where the time goes (sampled histories; Temporal server persistence requests per unit):');
    for (const phase of profiled) {
      const h = phase.histories;
      if (!h) continue;
      const activities = Object.entries(h.activities)
        .map(([type, a]) => `${type} queue ${fmt(a.queueMsP50, 1)} / run ${fmt(a.runMsP50, 1)} ms`)
        .join('; ');
      out.push(
        `  ${SYSTEM_LABEL[phase.system]}, ${phase.load}: ${h.eventsPerWorkflow} events, ${h.workflowTasksPerWorkflow} workflow tasks, ` +
          `${h.activitiesPerWorkflow} activities, ${h.localActivityMarkersPerWorkflow} local-activity markers, ` +
          `${h.searchAttributeUpsertsPerWorkflow} search-attribute upserts per workflow; workflow task queue p50 ` +
          `${fmt(h.workflowTaskQueueMs.p50, 1)} ms, run p50 ${fmt(h.workflowTaskRunMs.p50, 1)} / p90 ${fmt(h.workflowTaskRunMs.p90, 1)} ms; ` +
          `${activities}; persistence requests ${fmt(phase.temporal.persistenceRequestsPerUnit, 1)}` +
          (phase.workflowCloseMs ? `; send → workflow closed p50 ${fmt(phase.workflowCloseMs.p50)} ms` : ''),
      );
    }
  }
  const failed = report.phases.filter(
    (phase) => phase.acknowledged < phase.sent || phase.done < phase.acknowledged,
  );
  for (const phase of failed) {
    out.push(
      `! ${SYSTEM_LABEL[phase.system]}, ${phase.load}: ${phase.sent - phase.acknowledged} not acknowledged ${JSON.stringify(phase.errors)}, ` +
        `${phase.acknowledged - phase.done} acknowledged but not done before the deadline`,
    );
  }
  return out.join('\n');
}
