import { toSafeInteger } from '../../domain/integers';
import type { Queryable } from '../client';

export interface RejectedEvent {
  id: number;
  eventId: string;
  eventType: string | null;
  reasonCode: string;
  reason: string;
  payloadExcerpt: string;
  deliveries: number;
  firstReceivedAt: Date;
  lastReceivedAt: Date;
}

interface RejectedEventRow {
  id: string;
  event_id: string;
  event_type: string | null;
  reason_code: string;
  reason: string;
  payload_excerpt: string;
  deliveries: number;
  first_received_at: Date;
  last_received_at: Date;
}

const COLUMNS =
  'id, event_id, event_type, reason_code, reason, payload_excerpt, deliveries, first_received_at, last_received_at';

const toRejected = (row: RejectedEventRow): RejectedEvent => ({
  id: toSafeInteger(row.id, 'rejected event id'),
  eventId: row.event_id,
  eventType: row.event_type,
  reasonCode: row.reason_code,
  reason: row.reason,
  payloadExcerpt: row.payload_excerpt,
  deliveries: row.deliveries,
  firstReceivedAt: row.first_received_at,
  lastReceivedAt: row.last_received_at,
});

// PostgreSQL text refuses NUL; what is stored is for a person to read, so control characters go.
const printable = (text: string, max: number) =>
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\uFFFD').slice(0, max);

/** Records a rejected delivery once per event; a redelivery counts itself and keeps the first. */
export async function recordRejectedEvent(
  sql: Queryable,
  event: { eventId: string; eventType: string | null; reasonCode: string; reason: string; payload: string },
): Promise<RejectedEvent> {
  const [row] = await sql<RejectedEventRow[]>`
    INSERT INTO rejected_events (event_id, event_type, reason_code, reason, payload_excerpt)
    VALUES (${printable(event.eventId, 300)}, ${event.eventType === null ? null : printable(event.eventType, 100)},
            ${event.reasonCode}, ${printable(event.reason, 2000)}, ${printable(event.payload, 4096)})
    ON CONFLICT (event_id) DO UPDATE SET deliveries = rejected_events.deliveries + 1, last_received_at = now()
    RETURNING ${sql.unsafe(COLUMNS)}`;
  if (!row) throw new Error('rejected event insert returned nothing');
  return toRejected(row);
}

/** Rejected events, newest first, strictly older than `beforeId` when given. */
export async function listRejectedEvents(
  sql: Queryable,
  page: { limit: number; beforeId: number | null },
): Promise<RejectedEvent[]> {
  const rows = await sql<RejectedEventRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM rejected_events
    ${page.beforeId === null ? sql`` : sql`WHERE id < ${page.beforeId}`}
    ORDER BY id DESC LIMIT ${page.limit}`;
  return rows.map(toRejected);
}
