import { Router } from 'express';
import type { Sql } from '../../db/client';
import { listRejectedEvents, type RejectedEvent } from '../../db/stripe/rejected-events';
import { decodeCursor, pageOf } from '../cursors';
import { parseOrThrow } from '../errors';
import { ledgerQuery } from '../schemas';
import { requireRole } from '../auth';

export const presentRejectedEvent = (event: RejectedEvent) => ({
  id: event.id,
  eventId: event.eventId,
  eventType: event.eventType,
  reasonCode: event.reasonCode,
  reason: event.reason,
  payloadExcerpt: event.payloadExcerpt,
  deliveries: event.deliveries,
  firstReceivedAt: event.firstReceivedAt.toISOString(),
  lastReceivedAt: event.lastReceivedAt.toISOString(),
});

/** Signed Stripe events the service rejected for good: what operators look at and replay by hand. */
export function rejectedEventsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();
  router.get('/v1/rejected-events', requireRole('admin'), async (req, res) => {
    const query = parseOrThrow(ledgerQuery, req.query);
    const rows = await listRejectedEvents(sql, {
      limit: query.limit + 1,
      beforeId: decodeCursor(query.cursor),
    });
    const { items, nextCursor } = pageOf(rows, query.limit);
    res.json({ events: items.map(presentRejectedEvent), nextCursor });
  });
  return router;
}
