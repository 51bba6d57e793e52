import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { percentile } from '../bench-support';

/** CPU and memory of named processes (each with its children) while a phase runs. */

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  ppid: number;
  ticks: number;
  rssKb: number;
}

function readProcs(): Map<number, ProcStat> {
  const procs = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const rssPages = Number(fields[21]);
      procs.set(Number(entry), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
        rssKb: (rssPages * 4096) / 1024,
      });
    } catch {
      // gone meanwhile
    }
  }
  return procs;
}

function treeOf(root: number, procs: Map<number, ProcStat>): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i += 1) {
    for (const [pid, proc] of procs) if (proc.ppid === tree[i]) tree.push(pid);
  }
  return tree.filter((pid) => procs.has(pid));
}

export interface ProcessUsage {
  /** Average CPU over the phase, in % of one core (200 % = both cores of a 2-core machine). */
  cpuPercent: number;
  rssMaxMb: number;
}

export class ProcessSampler {
  private readonly startTicks = new Map<number, number>();
  private readonly maxRss = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private startedAt = 0;

  constructor(private readonly processes: Record<string, () => number | undefined>) {}

  private sample(): Map<number, ProcStat> {
    const procs = readProcs();
    for (const [name, pidOf] of Object.entries(this.processes)) {
      const pid = pidOf();
      if (pid === undefined) continue;
      const rss = treeOf(pid, procs).reduce((sum, each) => sum + (procs.get(each)?.rssKb ?? 0), 0) / 1024;
      this.maxRss.set(name, Math.max(this.maxRss.get(name) ?? 0, rss));
    }
    return procs;
  }

  start(): void {
    const procs = this.sample();
    for (const [pid, proc] of procs) this.startTicks.set(pid, proc.ticks);
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.sample(), 500);
  }

  stop(): Record<string, ProcessUsage> {
    if (this.timer) clearInterval(this.timer);
    const procs = this.sample();
    const seconds = (performance.now() - this.startedAt) / 1000;
    const usage: Record<string, ProcessUsage> = {};
    for (const [name, pidOf] of Object.entries(this.processes)) {
      const pid = pidOf();
      if (pid === undefined) continue;
      const ticks = treeOf(pid, procs).reduce(
        (sum, each) => sum + (procs.get(each)?.ticks ?? 0) - (this.startTicks.get(each) ?? 0),
        0,
      );
      usage[name] = {
        cpuPercent: Math.round((ticks / TICKS_PER_SECOND / seconds) * 1000) / 10,
        rssMaxMb: Math.round(this.maxRss.get(name) ?? 0),
      };
    }
    return usage;
  }
}

/** Sums of the Temporal server's Prometheus counters, by metric name and `operation` label. */
export async function scrapeTemporal(url: string): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
    for (const line of text.split('\n')) {
      const match = /^(persistence_requests|service_requests)\{([^}]*)\}\s+([0-9.e+]+)/.exec(line);
      if (!match) continue;
      const [, name = '', labels = '', value = '0'] = match;
      const operation = /(?:^|,)operation="([^"]*)"/.exec(labels)?.[1] ?? '';
      const add = (key: string) => sums.set(key, (sums.get(key) ?? 0) + Number(value));
      add(name);
      add(`${name}:${operation}`);
    }
  } catch {
    // no metrics: the figures that need them are left out
  }
  return sums;
}

export function counterDelta(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [key, value] of after) {
    const d = value - (before.get(key) ?? 0);
    if (d > 0) delta.set(key, d);
  }
  return delta;
}

export interface HistoryProfile {
  sampled: number;
  eventsPerWorkflow: number;
  workflowTasksPerWorkflow: number;
  activitiesPerWorkflow: number;
  localActivityMarkersPerWorkflow: number;
  searchAttributeUpsertsPerWorkflow: number;
  /** Workflow task: scheduled → started (waiting for a poller) and started → completed (the worker). */
  workflowTaskQueueMs: { p50: number; p90: number };
  workflowTaskRunMs: { p50: number; p90: number };
  /** Each activity type: scheduled → started and started → completed. */
  activities: Record<string, { queueMsP50: number; runMsP50: number; runMsP90: number }>;
}

const millis = (time: unknown): number => {
  const t = time as { seconds?: { toNumber?: () => number } | number | string; nanos?: number } | null;
  if (!t) return Number.NaN;
  const seconds =
    typeof t.seconds === 'object' && t.seconds?.toNumber ? t.seconds.toNumber() : Number(t.seconds ?? 0);
  return seconds * 1000 + (t.nanos ?? 0) / 1e6;
};

const p = (values: number[], q: number) =>
  Math.round(
    percentile(
      [...values].sort((a, b) => a - b),
      q,
    ) * 10,
  ) / 10;

/** Reads the histories of some workflows of a phase: how many events, tasks and activities, and how long each waited and ran. */
export async function profileHistories(
  client: Client,
  workflowIds: string[],
): Promise<HistoryProfile | null> {
  if (workflowIds.length === 0) return null;
  let events = 0;
  let tasks = 0;
  let activities = 0;
  let markers = 0;
  let upserts = 0;
  const taskQueue: number[] = [];
  const taskRun: number[] = [];
  const perActivity = new Map<string, { queue: number[]; run: number[] }>();
  let sampled = 0;
  for (const workflowId of workflowIds) {
    let history;
    try {
      history = await client.workflow.getHandle(workflowId).fetchHistory();
    } catch {
      continue;
    }
    sampled += 1;
    const byId = new Map<string, { type: string; at: number }>();
    const activityOf = new Map<string, string>();
    for (const event of history.events ?? []) {
      events += 1;
      const at = millis(event.eventTime);
      const id = String(event.eventId ?? '');
      if (event.workflowTaskScheduledEventAttributes) {
        tasks += 1;
        byId.set(id, { type: 'wft-scheduled', at });
      } else if (event.workflowTaskStartedEventAttributes) {
        const scheduled = byId.get(String(event.workflowTaskStartedEventAttributes.scheduledEventId ?? ''));
        if (scheduled) taskQueue.push(at - scheduled.at);
        byId.set(id, { type: 'wft-started', at });
      } else if (event.workflowTaskCompletedEventAttributes) {
        const started = byId.get(String(event.workflowTaskCompletedEventAttributes.startedEventId ?? ''));
        if (started) taskRun.push(at - started.at);
      } else if (event.activityTaskScheduledEventAttributes) {
        activities += 1;
        const type = event.activityTaskScheduledEventAttributes.activityType?.name ?? '?';
        activityOf.set(id, type);
        byId.set(id, { type, at });
      } else if (event.activityTaskStartedEventAttributes) {
        const scheduledId = String(event.activityTaskStartedEventAttributes.scheduledEventId ?? '');
        const scheduled = byId.get(scheduledId);
        const type = activityOf.get(scheduledId) ?? '?';
        const entry = perActivity.get(type) ?? { queue: [], run: [] };
        perActivity.set(type, entry);
        if (scheduled) entry.queue.push(at - scheduled.at);
        byId.set(id, { type, at });
      } else if (event.activityTaskCompletedEventAttributes) {
        const startedId = String(event.activityTaskCompletedEventAttributes.startedEventId ?? '');
        const started = byId.get(startedId);
        const entry = started ? perActivity.get(started.type) : undefined;
        if (started && entry) entry.run.push(at - started.at);
      } else if (event.markerRecordedEventAttributes) {
        markers += 1;
      } else if (event.upsertWorkflowSearchAttributesEventAttributes) {
        upserts += 1;
      }
    }
  }
  if (sampled === 0) return null;
  const per = (n: number) => Math.round((n / sampled) * 10) / 10;
  return {
    sampled,
    eventsPerWorkflow: per(events),
    workflowTasksPerWorkflow: per(tasks),
    activitiesPerWorkflow: per(activities),
    localActivityMarkersPerWorkflow: per(markers),
    searchAttributeUpsertsPerWorkflow: per(upserts),
    workflowTaskQueueMs: { p50: p(taskQueue, 50), p90: p(taskQueue, 90) },
    workflowTaskRunMs: { p50: p(taskRun, 50), p90: p(taskRun, 90) },
    activities: Object.fromEntries(
      [...perActivity].map(([type, { queue, run }]) => [
        type,
        { queueMsP50: p(queue, 50), runMsP50: p(run, 50), runMsP90: p(run, 90) },
      ]),
    ),
  };
}
