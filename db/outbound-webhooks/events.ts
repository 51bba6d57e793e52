import { createHash } from 'node:crypto';
import {
  OPT_IN_EVENT_TYPES,
  OUTBOUND_API_VERSION,
  outboundEventIdSchema,
  outboundEventTypeSchema,
  type OutboundEventType,
} from '../../domain/outbound-events';
import type { Queryable } from '../client';

/** The channel a committed event's endpoints are announced on (NOTIFY is delivered at commit). */
export const OUTBOUND_NOTIFY_CHANNEL = 'outbound_webhooks';

export interface OutboundEvent {
  id: string;
  type: OutboundEventType;
  accountId: string;
  data: Record<string, unknown>;
}

/**
 * The event's ID, derived from what it reports (its type and the business key of the change),
 * never from a clock or a random number: a retried transaction or activity emits the same ID.
 */
export function outboundEventId(type: OutboundEventType, businessKey: string): string {
  const digest = createHash('sha256').update(`${type}\n${businessKey}`).digest('hex').slice(0, 32);
  return `evt_${digest}`;
}

/**
 * Queues an event in the caller's transaction and a delivery to each endpoint enabled for its
 * type; the same ID is queued once. An opt-in type (`credits.debited`) no endpoint asks for is
 * not stored at all: debits are the busiest path. The endpoints are announced on commit, so that their
 * dispatchers start at once; their own timers deliver it anyway if the announcement is lost.
 */
export async function queueOutboundEvent(tx: Queryable, event: OutboundEvent): Promise<void> {
  outboundEventIdSchema.parse(event.id);
  outboundEventTypeSchema.parse(event.type);
  const endpoints = await tx<{ endpoint_id: string }[]>`
    WITH inserted AS (
      INSERT INTO outbound_events (id, type, account_id, api_version, data)
      SELECT ${event.id}, ${event.type}, ${event.accountId}, ${OUTBOUND_API_VERSION}, ${tx.json(event.data as never)}
      ${
        OPT_IN_EVENT_TYPES.includes(event.type)
          ? tx`WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND ${event.type} = ANY (event_types))`
          : tx``
      }
      ON CONFLICT (id) DO NOTHING
      RETURNING id, seq, type, account_id
    ),
    -- Locked as the foreign key would lock them, but before the insert: an endpoint being
    -- deleted meanwhile is waited for and left out, rather than failing the change it reports.
    subscribed AS (
      SELECT id FROM webhook_endpoints WHERE enabled AND ${event.type} = ANY (event_types) FOR KEY SHARE
    )
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_seq, account_id)
    SELECT e.id, i.id, i.seq, i.account_id
    FROM inserted i CROSS JOIN subscribed e
    RETURNING endpoint_id`;
  if (endpoints.length > 0) {
    const ids = endpoints.map((row) => row.endpoint_id).join(',');
    // A NOTIFY payload holds under 8000 bytes; an empty one stands for every endpoint.
    await tx`SELECT pg_notify(${OUTBOUND_NOTIFY_CHANNEL}, ${ids.length <= 4000 ? ids : ''})`;
  }
}

/**
 * Whether any enabled endpoint receives events of this type: a movement on the busiest paths asks
 * once, alongside its other reads, and skips queuing an opt-in event nobody wants.
 */
export async function endpointsWant(tx: Queryable, type: OutboundEventType): Promise<boolean> {
  const [row] = await tx<{ wanted: boolean }[]>`
    SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND ${type} = ANY (event_types)) AS wanted`;
  return row?.wanted ?? false;
}
