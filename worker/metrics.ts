import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BusinessMetrics } from '../activities/business-metrics';
import type { Sql } from '../db/client';

/** The kinds of outbox email (`<kind>:<reference>` keys, email/templates.ts). */
const EMAIL_KINDS = new Set(['receipt', 'dunning', 'subscription-ended', 'payment-failed']);
const emailKind = (key: string) => {
  const kind = key.slice(0, key.indexOf(':'));
  return EMAIL_KINDS.has(kind) ? kind : 'other';
};

/** What a held purchase's record calls its kind, as the metrics name it. */
const HELD_KINDS = { checkout_session: 'purchase', invoice: 'invoice' } as const;

export interface WorkerMetricsOptions {
  sql: Sql;
  /** The database gauges are read at most this often, however often Prometheus scrapes. */
  databaseRefreshMs?: number;
  /** Node's process metrics (CPU, heap, event loop); off in tests that share a process. */
  processMetrics?: boolean;
}

/**
 * The worker's own metrics, in a registry of their own (tests make a fresh one each). Counters
 * are moved by the activities, through `business` (ActivityDependencies.metrics); the gauges of
 * what waits (held purchases, owed top-up grants, rejected events) are read from PostgreSQL when scraped, since
 * they describe the whole service, not this process.
 */
export function createWorkerMetrics(options: WorkerMetricsOptions) {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const creditsGranted = new Counter({
    name: 'billing_credits_granted_total',
    help: 'Credits granted by the worker (purchases, subscription periods), by grant source; a retry that finds its own grant does not count.',
    labelNames: ['source'] as const,
    registers,
  });
  const creditsRevoked = new Counter({
    name: 'billing_credits_revoked_total',
    help: 'Credits taken back by refunds and disputes, by the source of the grant and the reason.',
    labelNames: ['source', 'reason'] as const,
    registers,
  });
  const creditsRestored = new Counter({
    name: 'billing_credits_restored_total',
    help: 'Credits a won dispute gave back, by the source of the grant.',
    labelNames: ['source'] as const,
    registers,
  });
  const creditsExpired = new Counter({
    name: 'billing_credits_expired_total',
    help: 'Unused credits that expired with their grant, by grant source.',
    labelNames: ['source'] as const,
    registers,
  });
  const emailsSent = new Counter({
    name: 'billing_emails_sent_total',
    help: 'Receipts and notices the SMTP server accepted, by kind (receipt, dunning, payment-failed, subscription-ended).',
    labelNames: ['kind'] as const,
    registers,
  });
  const emailsFailed = new Counter({
    name: 'billing_emails_failed_total',
    help: 'Receipts and notices recorded as failed for good (permanent refusal, or past their deadline), by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  // No label, so that the series exists at 0 before the first one and an alert sees its increase.
  const reconcileMissed = new Counter({
    name: 'billing_reconcile_missed_events_total',
    help: 'Stripe events reconciliation found that no webhook had delivered (it started their workflows).',
    registers,
  });
  // Series present from the start: `increase()` over a series that appears at 1 sees nothing.
  for (const kind of EMAIL_KINDS) {
    emailsSent.inc({ kind }, 0);
    emailsFailed.inc({ kind }, 0);
  }
  creditsGranted.inc({ source: 'purchase' }, 0);
  creditsGranted.inc({ source: 'subscription' }, 0);

  const waiting = readWaiting(options.sql, options.databaseRefreshMs ?? 10_000);
  new Gauge({
    name: 'billing_purchases_held_for_review',
    help: 'Purchases and subscription invoices that wait for a reviewer, by kind (read from PostgreSQL).',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      const { held } = await waiting();
      for (const kind of Object.values(HELD_KINDS)) this.set({ kind }, held[kind].count);
    },
  });
  new Gauge({
    name: 'billing_purchases_held_oldest_age_seconds',
    help: 'How long the oldest purchase held for review has waited since it was last updated, by kind; 0 when none waits.',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      const { held } = await waiting();
      for (const kind of Object.values(HELD_KINDS)) this.set({ kind }, held[kind].oldestSeconds);
    },
  });
  new Gauge({
    name: 'billing_topup_grants_owed',
    help: 'Automatic top-ups whose money was taken but whose grant the database keeps refusing (recorded grant_failed; their runs retry it), read from PostgreSQL.',
    registers,
    async collect() {
      this.set((await waiting()).owedGrants.count);
    },
  });
  new Gauge({
    name: 'billing_topup_grants_owed_oldest_age_seconds',
    help: 'How long the oldest top-up grant owed has been owed (since it was recorded grant_failed); 0 when none is.',
    registers,
    async collect() {
      this.set((await waiting()).owedGrants.oldestSeconds);
    },
  });
  new Gauge({
    name: 'billing_rejected_events_stored',
    help: 'Signed Stripe events rejected for good and kept for operators (rejected_events rows).',
    registers,
    async collect() {
      this.set((await waiting()).rejectedEvents);
    },
  });
  new Gauge({
    name: 'billing_metrics_database_up',
    help: '1 when the last read of the database gauges succeeded; 0 while they show their last known values.',
    registers,
    async collect() {
      this.set((await waiting()).ok ? 1 : 0);
    },
  });

  const business: BusinessMetrics = {
    creditsGranted: (source, credits) => creditsGranted.inc({ source }, credits),
    creditsRevoked: (source, reason, credits) => creditsRevoked.inc({ source, reason }, credits),
    creditsRestored: (source, credits) => creditsRestored.inc({ source }, credits),
    creditsExpired: (source, credits) => creditsExpired.inc({ source }, credits),
    emailSent: (key) => emailsSent.inc({ kind: emailKind(key) }),
    emailFailed: (key) => emailsFailed.inc({ kind: emailKind(key) }),
    reconcileMissedEvents: (count = 1) => reconcileMissed.inc(count),
  };
  return { registry, business };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

interface Waiting {
  ok: boolean;
  held: Record<(typeof HELD_KINDS)[keyof typeof HELD_KINDS], { count: number; oldestSeconds: number }>;
  owedGrants: { count: number; oldestSeconds: number };
  rejectedEvents: number;
}

/**
 * One query for every database gauge, shared by the gauges of one scrape and reused for
 * `refreshMs`. When the database cannot answer, the last values stay and `ok` says so: a scrape
 * never fails because of it, and `billing_metrics_database_up` tells the dashboard.
 */
function readWaiting(sql: Sql, refreshMs: number): () => Promise<Waiting> {
  let last: Waiting = {
    ok: false,
    held: { purchase: { count: 0, oldestSeconds: 0 }, invoice: { count: 0, oldestSeconds: 0 } },
    owedGrants: { count: 0, oldestSeconds: 0 },
    rejectedEvents: 0,
  };
  let readAt = -Infinity;
  let reading: Promise<Waiting> | null = null;
  const read = async (): Promise<Waiting> => {
    try {
      const rows = await sql<{ kind: string; waiting: number; oldest: number }[]>`
        SELECT kind, count(*)::int AS waiting,
               COALESCE(EXTRACT(EPOCH FROM now() - min(updated_at)), 0)::float8 AS oldest
        FROM purchases WHERE status = 'held_for_review' GROUP BY kind`;
      const [owed] = await sql<{ owed: number; oldest: number }[]>`
        SELECT count(*)::int AS owed, COALESCE(EXTRACT(EPOCH FROM now() - min(updated_at)), 0)::float8 AS oldest
        FROM topups WHERE status = 'failed' AND failure_code = 'grant_failed'`;
      const [rejected] = await sql<{ total: number }[]>`SELECT count(*)::int AS total FROM rejected_events`;
      const held: Waiting['held'] = {
        purchase: { count: 0, oldestSeconds: 0 },
        invoice: { count: 0, oldestSeconds: 0 },
      };
      for (const row of rows) {
        const kind = HELD_KINDS[row.kind as keyof typeof HELD_KINDS];
        if (kind) held[kind] = { count: row.waiting, oldestSeconds: Math.max(0, Math.round(row.oldest)) };
      }
      last = {
        ok: true,
        held,
        owedGrants: { count: owed?.owed ?? 0, oldestSeconds: Math.max(0, Math.round(owed?.oldest ?? 0)) },
        rejectedEvents: rejected?.total ?? 0,
      };
    } catch {
      last = { ...last, ok: false };
    }
    readAt = Date.now();
    return last;
  };
  return () => {
    if (reading) return reading;
    if (Date.now() - readAt < refreshMs) return Promise.resolve(last);
    reading = read().finally(() => {
      reading = null;
    });
    return reading;
  };
}
