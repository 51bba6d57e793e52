import type { Sql } from '../client';

/**
 * Deleting rows past their retention, one bounded batch per call (each its own transaction, so
 * no lock is held long). Nothing still to be delivered or sent is ever deleted: an outbound event
 * with a pending delivery, an email still pending.
 */

/**
 * Up to `limit` outbound events created more than `olderThanMs` ago, with their finished
 * deliveries (and those deliveries' attempts). Their deliveries are locked before the check, so a
 * re-send by hand that made one pending again either committed first (and keeps the event) or
 * waits for this batch. Answers how many events were deleted.
 */
export async function deleteExpiredOutboundEvents(
  sql: Sql,
  olderThanMs: number,
  limit: number,
): Promise<number> {
  return sql.begin(async (tx) => {
    const candidates = await tx<{ id: string }[]>`
      SELECT e.id FROM outbound_events e
      WHERE e.created_at < now() - ${olderThanMs} * interval '1 millisecond'
        AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
      ORDER BY e.created_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED`;
    if (candidates.length === 0) return 0;
    const ids = candidates.map(({ id }) => id);
    const deliveries = await tx<{ event_id: string; status: string }[]>`
      SELECT event_id, status FROM webhook_deliveries WHERE event_id = ANY(${ids}::text[])
      FOR UPDATE`;
    const keep = new Set(deliveries.filter((row) => row.status === 'pending').map((row) => row.event_id));
    const doomed = ids.filter((id) => !keep.has(id));
    if (doomed.length === 0) return 0;
    await tx`DELETE FROM webhook_deliveries WHERE event_id = ANY(${doomed}::text[])`;
    const deleted = await tx`DELETE FROM outbound_events WHERE id = ANY(${doomed}::text[]) RETURNING id`;
    return deleted.length;
  });
}

/** Up to `limit` emails sent or failed, queued more than `olderThanMs` ago; never a pending one. */
export async function deleteExpiredEmails(sql: Sql, olderThanMs: number, limit: number): Promise<number> {
  const deleted = await sql`
    DELETE FROM email_outbox WHERE id IN (
      SELECT id FROM email_outbox
      WHERE status <> 'pending' AND created_at < now() - ${olderThanMs} * interval '1 millisecond'
      ORDER BY created_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    AND status <> 'pending'
    RETURNING id`;
  return deleted.length;
}

/** Up to `limit` rejected events last received more than `olderThanMs` ago. */
export async function deleteExpiredRejectedEvents(
  sql: Sql,
  olderThanMs: number,
  limit: number,
): Promise<number> {
  const deleted = await sql`
    DELETE FROM rejected_events WHERE id IN (
      SELECT id FROM rejected_events
      WHERE last_received_at < now() - ${olderThanMs} * interval '1 millisecond'
      ORDER BY last_received_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING id`;
  return deleted.length;
}
