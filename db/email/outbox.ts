import { emailKeys } from '../../email/templates';
import { errors } from '../../domain/errors';
import { renderPurchaseReceipt, type ReceiptFacts } from '../../email/receipt';
import type { Queryable, Sql } from '../client';

export interface OutboxMessage {
  key: string;
  accountId: string | null;
  to: string;
  subject: string;
  text: string;
  /** The workflow that queued it and delivers it. */
  workflowId?: string | null;
}

export interface OutboxRow {
  id: string;
  key: string;
  to_address: string;
  subject: string;
  body_text: string;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  last_error: string | null;
  message_id: string | null;
}

/** Queues a message inside the caller's transaction; the same key is queued once. */
export async function enqueueEmail(tx: Queryable, message: OutboxMessage): Promise<void> {
  await tx`
    INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id)
    VALUES (${message.key}, ${message.accountId}, ${message.to}, ${message.subject}, ${message.text},
            ${message.workflowId ?? null})
    ON CONFLICT (key) DO NOTHING`;
}

/** Queues a message to the account's address inside the caller's transaction. */
export async function enqueueAccountEmail(
  tx: Queryable,
  message: Omit<OutboxMessage, 'to'> & { accountId: string },
): Promise<void> {
  const [account] = await tx<{ email: string }[]>`SELECT email FROM accounts WHERE id = ${message.accountId}`;
  if (!account) throw new Error(`account ${message.accountId} has no address to write to`);
  await enqueueEmail(tx, { ...message, to: account.email });
}

/**
 * Queues the receipt of a grant that is committing in `tx`, keyed by its purchase (the
 * receipt's reference), and answers the key: the one place a receipt is rendered and queued.
 */
export async function queueReceipt(
  tx: Queryable,
  receipt: ReceiptFacts & { workflowId: string },
): Promise<string> {
  const key = emailKeys.receipt(receipt.reference);
  await enqueueAccountEmail(tx, {
    key,
    accountId: receipt.accountId,
    workflowId: receipt.workflowId,
    ...renderPurchaseReceipt(receipt),
  });
  return key;
}

/** Whether a message with this key was ever queued (what a retried grant answers). */
export async function isEmailQueued(tx: Queryable, key: string): Promise<boolean> {
  const [row] = await tx`SELECT 1 FROM email_outbox WHERE key = ${key}`;
  return row !== undefined;
}

/** Whether a message with this key was queued by this workflow (a retried step finds its own). */
export async function isEmailQueuedBy(tx: Queryable, key: string, workflowId: string): Promise<boolean> {
  const [row] = await tx`SELECT 1 FROM email_outbox WHERE key = ${key} AND workflow_id = ${workflowId}`;
  return row !== undefined;
}

/**
 * Messages still pending long after they were queued: their workflow has given up or is gone
 * (the longest delivery deadline has passed). The outbox sweep delivers them or records them as
 * failed, so nothing stays pending forever.
 */
export interface StalePendingEmail {
  key: string;
  workflowId: string | null;
  ageSeconds: number;
  /** Where the next page starts: the row's queue time, exact to the microsecond, and its key. */
  position: { createdAt: string; key: string };
}

export async function findStalePendingEmails(
  sql: Sql,
  olderThanSeconds: number,
  page: { limit: number; after: StalePendingEmail['position'] | null },
): Promise<StalePendingEmail[]> {
  const rows = await sql<
    { key: string; workflow_id: string | null; age_seconds: number; created_at: string }[]
  >`
    SELECT key, workflow_id, extract(epoch FROM now() - created_at)::float8 AS age_seconds,
           created_at::text AS created_at
    FROM email_outbox
    WHERE status = 'pending' AND created_at < now() - make_interval(secs => ${olderThanSeconds})
    ${page.after ? sql`AND (created_at, key) > (${page.after.createdAt}::timestamptz, ${page.after.key})` : sql``}
    ORDER BY created_at, key LIMIT ${page.limit}`;
  return rows.map((row) => ({
    key: row.key,
    workflowId: row.workflow_id,
    ageSeconds: row.age_seconds,
    position: { createdAt: row.created_at, key: row.key },
  }));
}

export type DeliveryOutcome =
  | { status: 'sent'; messageId: string; attempts: number }
  | { status: 'already_sent'; messageId: string | null }
  | { status: 'already_failed'; lastError: string | null };

/**
 * Delivers a queued message at most once per acceptance by the SMTP server: the row stays
 * locked while it is handed over, so a concurrent attempt waits and then sees it sent. A failed
 * attempt is counted and its error kept before the error is passed on to be retried.
 */
export async function deliverOutboxMessage(
  sql: Sql,
  key: string,
  send: (row: OutboxRow) => Promise<{ messageId: string }>,
): Promise<DeliveryOutcome> {
  let failure: unknown = null;
  const outcome = await sql.begin(async (tx): Promise<DeliveryOutcome | null> => {
    const [row] = await tx<OutboxRow[]>`
      SELECT id, key, to_address, subject, body_text, status, attempts, last_error, message_id
      FROM email_outbox WHERE key = ${key} FOR UPDATE`;
    if (!row) throw errors.outboxMessageNotFound(key);
    if (row.status === 'sent') return { status: 'already_sent', messageId: row.message_id };
    if (row.status === 'failed') return { status: 'already_failed', lastError: row.last_error };
    try {
      const { messageId } = await send(row);
      await tx`
        UPDATE email_outbox SET status = 'sent', attempts = attempts + 1, sent_at = now(),
               message_id = ${messageId}, last_error = NULL
        WHERE id = ${row.id}`;
      return { status: 'sent', messageId, attempts: row.attempts + 1 };
    } catch (error) {
      failure = error;
      await tx`
        UPDATE email_outbox SET attempts = attempts + 1, last_error = ${describe(error)}
        WHERE id = ${row.id}`;
      return null;
    }
  });
  if (failure !== null || outcome === null) throw failure;
  return outcome;
}

/** The final word on a message that will not be delivered; credits are never touched. */
/** True when this call recorded the failure (the email was still pending). */
export async function markEmailFailed(sql: Sql, key: string, reason: string): Promise<boolean> {
  const updated = await sql`
    UPDATE email_outbox SET status = 'failed', last_error = ${reason}
    WHERE key = ${key} AND status = 'pending'`;
  return updated.count > 0;
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 1000);
}
