import { z } from 'zod';
import { listRejectedEvents, type RejectedEvent } from '../../db/stripe/rejected-events';
import { decodeCursor, pageOf } from '../cursors';
import { pageQuery } from '../http/common-schemas';
import { defineRoute } from '../http/route';

export const rejectedEventResponse = z.object({
  id: z.number().int(),
  eventId: z.string(),
  eventType: z.string().nullable(),
  reasonCode: z.enum(['invalid_event', 'invalid_object', 'refused_by_temporal']),
  reason: z.string(),
  payloadExcerpt: z
    .string()
    .meta({ description: 'The first 4 KB of the body, control characters replaced.' }),
  deliveries: z.number().int(),
  firstReceivedAt: z.iso.datetime(),
  lastReceivedAt: z.iso.datetime(),
});

const rejectedEventListResponse = z
  .object({ events: z.array(rejectedEventResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'RejectedEventList' });

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
export const rejectedEventRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/rejected-events',
    role: 'admin',
    summary: 'Signed Stripe events rejected for good, newest first',
    query: pageQuery('Entries'),
    responses: { 200: ['One page.', rejectedEventListResponse] },
    errors: { 400: 'Bad limit or cursor.' },
    handler: async ({ query, deps }) => {
      const rows = await listRejectedEvents(deps.sql, {
        limit: query.limit + 1,
        beforeId: decodeCursor(query.cursor),
      });
      const { items, nextCursor } = pageOf(rows, query.limit);
      return { status: 200, body: { events: items.map(presentRejectedEvent), nextCursor } };
    },
  }),
];
