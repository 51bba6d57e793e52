import type postgres from 'postgres';
import { toSafeInteger } from '../../domain/integers';
import type { Queryable } from '../client';

/**
 * The audit log: one row per operator action, written in the action's own transaction where it
 * has one. The table refuses UPDATE, DELETE and TRUNCATE (a trigger), so this module only appends
 * and reads.
 */

export const AUDIT_ACTIONS = [
  'grant.created',
  'grant.voided',
  'review.approved',
  'review.rejected',
  /** A decision the run took but could not apply (the ledger refused the grant): nothing else changed. */
  'review.not_applied',
  'webhook_endpoint.created',
  'webhook_endpoint.updated',
  'webhook_endpoint.secret_rotated',
  'webhook_endpoint.deleted',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  id: number;
  at: Date;
  /** The name of the API key that acted. */
  actor: string;
  action: AuditAction;
  /** What it acted on: `grant:<id>`, `workflow:<id>`, `webhook_endpoint:<id>`. */
  subject: string;
  before: unknown;
  after: unknown;
  reason: string | null;
}

/**
 * What is recorded with an entry written by an activity, which may run again after its first
 * attempt committed: the key under which a second attempt finds the first one's row.
 */
export interface AuditKey {
  key?: string | null;
}

export const grantSubject = (grantId: number) => `grant:${grantId}`;
export const workflowSubject = (workflowId: string) => `workflow:${workflowId}`;
export const webhookEndpointSubject = (endpointId: string) => `webhook_endpoint:${endpointId}`;

interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  action: AuditAction;
  subject: string;
  before: unknown;
  after: unknown;
  reason: string | null;
}

const COLUMNS = 'id, at, actor, action, subject, before, after, reason';

const toEntry = (row: AuditRow): AuditEntry => ({
  id: toSafeInteger(row.id, 'audit id'),
  at: row.at,
  actor: row.actor,
  action: row.action,
  subject: row.subject,
  before: row.before,
  after: row.after,
  reason: row.reason,
});

// JSON columns go through the driver as JSON, unchanged (no key transform).
const asJson = (tx: Queryable, value: unknown) =>
  value === null || value === undefined ? null : tx.json(value as postgres.JSONValue);

/**
 * Appends one entry, in the caller's transaction when given one. An entry with a key that was
 * written before is not written again: the first one is returned.
 */
export async function recordAudit(
  tx: Queryable,
  entry: Omit<AuditEntry, 'id' | 'at'> & AuditKey,
): Promise<AuditEntry> {
  const [row] = await tx<AuditRow[]>`
    INSERT INTO audit_log (actor, action, subject, before, after, reason, key)
    VALUES (${entry.actor}, ${entry.action}, ${entry.subject}, ${asJson(tx, entry.before)},
            ${asJson(tx, entry.after)}, ${entry.reason}, ${entry.key ?? null})
    ON CONFLICT (key) DO NOTHING
    RETURNING ${tx.unsafe(COLUMNS)}`;
  if (row) return toEntry(row);
  const [earlier] = entry.key
    ? await tx<AuditRow[]>`SELECT ${tx.unsafe(COLUMNS)} FROM audit_log WHERE key = ${entry.key}`
    : [];
  if (!earlier) throw new Error('audit insert returned nothing');
  return toEntry(earlier);
}

/**
 * A reviewer's decision on a held payment, as the activity that applies it records it: the API
 * hands it to the workflow (its `decide` update, or the `review` signal), the workflow to the
 * activity, which writes it in the transaction of the decision's effect.
 */
export interface ReviewDecisionRecord {
  /** One per decision a run takes, `review:<workflow ID>:<n>`: a retried activity finds its row by it. */
  key: string;
  workflowId: string;
  /** The name of the API key that decided (or the reviewer a signal named). */
  reviewer: string;
  decision: 'approve' | 'reject';
  note: string | null;
  /** The credits the reviewer named (approvals only); null when the catalog decides. */
  credits: number | null;
  /** What was held, as the run saw it when the decision came. */
  before: Record<string, unknown>;
}

/** What a decision came to, as its audit row says it. */
export interface ReviewEffect {
  applied: boolean;
  /** Where the run goes: its stage attribute's next value (e.g. `sending_receipt`, `rejected`). */
  stage: string;
  /** The credits granted, for an applied approval. */
  granted: number | null;
  ledgerEntryId: number | null;
  /** Why it was not applied (`balance_out_of_range`…), or null. */
  reasonCode: string | null;
  reason: string | null;
}

const REVIEW_ACTIONS = { approve: 'review.approved', reject: 'review.rejected' } as const;

/** Records a decision with what it did, under its key: written once however often it is asked. */
export async function recordReviewDecision(
  tx: Queryable,
  review: ReviewDecisionRecord,
  effect: ReviewEffect,
): Promise<number> {
  const entry = await recordAudit(tx, {
    key: review.key,
    actor: review.reviewer,
    action: effect.applied ? REVIEW_ACTIONS[review.decision] : 'review.not_applied',
    subject: workflowSubject(review.workflowId),
    before: review.before,
    after: { decision: review.decision, credits: review.credits, ...effect },
    reason: review.note,
  });
  return entry.id;
}

/** The audit row written under a decision's key, if any (what a retried activity answers with). */
export async function findReviewAudit(tx: Queryable, key: string): Promise<number | null> {
  const [row] = await tx<{ id: string }[]>`SELECT id FROM audit_log WHERE key = ${key}`;
  return row ? toSafeInteger(row.id, 'audit id') : null;
}

/** Entries newest first, strictly older than `beforeId` when given, of one subject when given. */
export async function listAudit(
  sql: Queryable,
  page: { limit: number; beforeId: number | null; subject?: string | undefined },
): Promise<AuditEntry[]> {
  const rows = await sql<AuditRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM audit_log
    WHERE true
      ${page.beforeId === null ? sql`` : sql`AND id < ${page.beforeId}`}
      ${page.subject === undefined ? sql`` : sql`AND subject = ${page.subject}`}
    ORDER BY id DESC LIMIT ${page.limit}`;
  return rows.map(toEntry);
}
