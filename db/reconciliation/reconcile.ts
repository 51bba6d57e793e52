import { toSafeInteger } from '../../domain/integers';
import type { Queryable, Sql } from '../client';

/** A run as its first activity recorded it. */
export interface ReconcileRun {
  runId: number;
  fromSeconds: number;
  untilSeconds: number;
  /** The watermark this run moves on, or null for a backfill. */
  watermark: string | null;
  /** The event types to ask for, in groups Stripe accepts in one request. */
  typeGroups: string[][];
  /** Events are read in slices of this many seconds, oldest slice first. */
  sliceSeconds: number;
}

/** What a run counted. `started` are the events whose webhook never started their workflow. */
export interface ReconcileTally {
  pages: number;
  events: number;
  started: number;
  duplicates: number;
  ignored: number;
  rejected: number;
}

/** The answer of one page: its counts, the cursor of the next page, and the watermark after it. */
export interface ReconcilePageResult extends Omit<ReconcileTally, 'pages'> {
  nextCursor: string | null;
  /** Where the watermark stands once this page is done (null when the run moves none). */
  watermarkSeconds: number | null;
}

export interface ReconcileResult extends ReconcileTally {
  runId: number;
  fromSeconds: number;
  untilSeconds: number;
  watermarkSeconds: number | null;
}

/**
 * Runs, pages and watermarks of reconciliation. Every write is keyed (a run by its workflow, a
 * page by its place in the run), so a retried activity finds its own work and answers with it.
 */

export interface RunWindowRules {
  nowSeconds: number;
  /** How far before the watermark a run starts again, for events Stripe lists late. */
  overlapSeconds: number;
  /** How far back a run with no watermark (the first) reads. */
  lookbackSeconds: number;
  /** How recent an event may be and still be left to its webhook, this run. */
  delaySeconds: number;
}

interface RunRow {
  id: string;
  watermark_name: string | null;
  from_seconds: string;
  until_seconds: string;
  type_groups: string[][];
  slice_seconds: number;
}

const toRun = (row: RunRow): ReconcileRun => ({
  runId: toSafeInteger(row.id, 'reconcile run id'),
  fromSeconds: toSafeInteger(row.from_seconds, 'window start'),
  untilSeconds: toSafeInteger(row.until_seconds, 'window end'),
  watermark: row.watermark_name,
  typeGroups: row.type_groups,
  sliceSeconds: row.slice_seconds,
});

const RUN_COLUMNS = `id, watermark_name, extract(epoch FROM window_from)::bigint AS from_seconds,
  extract(epoch FROM window_until)::bigint AS until_seconds, type_groups, slice_seconds`;

/**
 * The run of `runKey`, recorded once: a backfill's window as given; a scheduled run's from the
 * watermark minus the overlap (or the lookback, the first time) to now minus the delay.
 */
export async function beginReconcileRun(
  sql: Sql,
  run: {
    runKey: string;
    watermark: string | null;
    window: { fromSeconds: number; untilSeconds: number } | null;
    rules: RunWindowRules;
    typeGroups: string[][];
    sliceSeconds: number;
  },
): Promise<ReconcileRun> {
  return sql.begin(async (tx) => {
    const [existing] = await tx<RunRow[]>`
      SELECT ${tx.unsafe(RUN_COLUMNS)} FROM reconcile_runs WHERE run_key = ${run.runKey}`;
    if (existing) return toRun(existing);
    const { nowSeconds, overlapSeconds, lookbackSeconds, delaySeconds } = run.rules;
    let window = run.window;
    if (!window) {
      const mark = run.watermark === null ? null : await readWatermarkSeconds(tx, run.watermark);
      const earliest = nowSeconds - lookbackSeconds;
      window = {
        fromSeconds: mark === null ? earliest : Math.max(mark - overlapSeconds, earliest),
        untilSeconds: nowSeconds - delaySeconds,
      };
    }
    const [row] = await tx<RunRow[]>`
      INSERT INTO reconcile_runs (run_key, watermark_name, window_from, window_until, type_groups, slice_seconds)
      VALUES (${run.runKey}, ${run.watermark}, to_timestamp(${window.fromSeconds}),
              to_timestamp(${Math.max(window.untilSeconds, window.fromSeconds)}),
              ${tx.json(run.typeGroups)}, ${run.sliceSeconds})
      ON CONFLICT (run_key) DO NOTHING
      RETURNING ${tx.unsafe(RUN_COLUMNS)}`;
    if (row) return toRun(row);
    const [raced] = await tx<RunRow[]>`
      SELECT ${tx.unsafe(RUN_COLUMNS)} FROM reconcile_runs WHERE run_key = ${run.runKey}`;
    if (!raced) throw new Error(`reconcile run ${run.runKey} was neither inserted nor found`);
    return toRun(raced);
  });
}

export async function readWatermarkSeconds(sql: Queryable, name: string): Promise<number | null> {
  const [row] = await sql<{ seconds: string }[]>`
    SELECT extract(epoch FROM watermark)::bigint AS seconds FROM reconcile_watermarks WHERE name = ${name}`;
  return row ? toSafeInteger(row.seconds, 'watermark') : null;
}

export interface PageKey {
  runId: number;
  slice: number;
  group: number;
  page: number;
}

interface PageRow {
  events: number;
  started: number;
  duplicates: number;
  ignored: number;
  rejected: number;
  next_cursor: string | null;
  watermark_seconds: string | null;
}

const toPage = (row: PageRow): ReconcilePageResult => ({
  events: row.events,
  started: row.started,
  duplicates: row.duplicates,
  ignored: row.ignored,
  rejected: row.rejected,
  nextCursor: row.next_cursor,
  watermarkSeconds: row.watermark_seconds === null ? null : toSafeInteger(row.watermark_seconds, 'watermark'),
});

const PAGE_COLUMNS = `events, started, duplicates, ignored, rejected, next_cursor,
  extract(epoch FROM watermark)::bigint AS watermark_seconds`;

/** What a page answered when it was first done, or null. */
export async function findReconcilePage(sql: Queryable, key: PageKey): Promise<ReconcilePageResult | null> {
  const [row] = await sql<PageRow[]>`
    SELECT ${sql.unsafe(PAGE_COLUMNS)} FROM reconcile_pages
    WHERE run_id = ${key.runId} AND slice = ${key.slice} AND type_group = ${key.group} AND page = ${key.page}`;
  return row ? toPage(row) : null;
}

/**
 * Records a page and, in the same transaction, adds it to its run and moves the run's watermark
 * to `advanceToSeconds` (never back). A page recorded already is answered as it was, and counts
 * nothing twice: `recordedNow` says which.
 */
export async function recordReconcilePage(
  sql: Sql,
  key: PageKey,
  page: Omit<ReconcilePageResult, 'watermarkSeconds'> & {
    startedEvents: { id: string; type: string }[];
    advanceToSeconds: number | null;
  },
): Promise<{ result: ReconcilePageResult; recordedNow: boolean }> {
  return sql.begin(async (tx) => {
    const [run] = await tx<{ watermark_name: string | null }[]>`
      SELECT watermark_name FROM reconcile_runs WHERE id = ${key.runId} FOR UPDATE`;
    if (!run) throw new Error(`no reconcile run ${key.runId}`);
    const name = run.watermark_name;
    if (name !== null && page.advanceToSeconds !== null) {
      await tx`
        INSERT INTO reconcile_watermarks (name, watermark) VALUES (${name}, to_timestamp(${page.advanceToSeconds}))
        ON CONFLICT (name) DO UPDATE
          SET watermark = GREATEST(reconcile_watermarks.watermark, EXCLUDED.watermark), updated_at = now()
          WHERE reconcile_watermarks.watermark < EXCLUDED.watermark`;
    }
    const watermark = name === null ? null : await readWatermarkSeconds(tx, name);
    const [inserted] = await tx<PageRow[]>`
      INSERT INTO reconcile_pages (run_id, slice, type_group, page, events, started, duplicates, ignored,
                                   rejected, started_events, next_cursor, watermark)
      VALUES (${key.runId}, ${key.slice}, ${key.group}, ${key.page}, ${page.events}, ${page.started},
              ${page.duplicates}, ${page.ignored}, ${page.rejected}, ${tx.json(page.startedEvents)},
              ${page.nextCursor}, ${watermark === null ? null : tx`to_timestamp(${watermark})`})
      ON CONFLICT DO NOTHING
      RETURNING ${tx.unsafe(PAGE_COLUMNS)}`;
    if (!inserted) {
      const earlier = await findReconcilePage(tx, key);
      if (!earlier) throw new Error('reconcile page neither inserted nor found');
      return { result: earlier, recordedNow: false };
    }
    await tx`
      UPDATE reconcile_runs SET pages = pages + 1, events = events + ${page.events},
        started = started + ${page.started}, duplicates = duplicates + ${page.duplicates},
        ignored = ignored + ${page.ignored}, rejected = rejected + ${page.rejected}
      WHERE id = ${key.runId}`;
    return { result: toPage(inserted), recordedNow: true };
  });
}

interface RunTotalsRow extends RunRow {
  pages: number;
  events: number;
  started: number;
  duplicates: number;
  ignored: number;
  rejected: number;
}

/** Closes a run once (completed, or failed with why) and answers its totals. */
export async function finishReconcileRun(
  sql: Sql,
  runId: number,
  outcome: { status: 'completed' | 'failed'; error?: string },
): Promise<ReconcileResult> {
  await sql`
    UPDATE reconcile_runs SET status = ${outcome.status}, error = ${outcome.error?.slice(0, 2000) ?? null},
      finished_at = now()
    WHERE id = ${runId} AND status = 'running'`;
  const [row] = await sql<RunTotalsRow[]>`
    SELECT ${sql.unsafe(RUN_COLUMNS)}, pages, events, started, duplicates, ignored, rejected
    FROM reconcile_runs WHERE id = ${runId}`;
  if (!row) throw new Error(`no reconcile run ${runId}`);
  const run = toRun(row);
  return {
    runId,
    fromSeconds: run.fromSeconds,
    untilSeconds: run.untilSeconds,
    watermarkSeconds: run.watermark === null ? null : await readWatermarkSeconds(sql, run.watermark),
    pages: row.pages,
    events: row.events,
    started: row.started,
    duplicates: row.duplicates,
    ignored: row.ignored,
    rejected: row.rejected,
  };
}

/** Whether an event is among the rejected ones already. */
export async function rejectedEventExists(sql: Queryable, eventId: string): Promise<boolean> {
  const [row] = await sql`SELECT 1 FROM rejected_events WHERE event_id = ${eventId}`;
  return row !== undefined;
}
