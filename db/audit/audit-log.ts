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

/** Appends one entry, in the caller's transaction when given one. */
export async function recordAudit(tx: Queryable, entry: Omit<AuditEntry, 'id' | 'at'>): Promise<AuditEntry> {
  const [row] = await tx<AuditRow[]>`
    INSERT INTO audit_log (actor, action, subject, before, after, reason)
    VALUES (${entry.actor}, ${entry.action}, ${entry.subject}, ${asJson(tx, entry.before)},
            ${asJson(tx, entry.after)}, ${entry.reason})
    RETURNING ${tx.unsafe(COLUMNS)}`;
  if (!row) throw new Error('audit insert returned nothing');
  return toEntry(row);
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
