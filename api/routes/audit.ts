import { z } from 'zod';
import { AUDIT_ACTIONS, listAudit, type AuditEntry } from '../../db/audit/audit-log';
import { decodeCursor, pageOf } from '../cursors';
import { pageQueryFields } from '../http/common-schemas';
import { defineRoute } from '../http/route';

const auditQuery = z.strictObject({
  ...pageQueryFields('Entries'),
  subject: z
    .string()
    .regex(
      /^[a-z_]+:[\x21-\x7e]{1,290}$/,
      'a subject such as grant:17, workflow:evt_… or webhook_endpoint:we_…',
    )
    .optional()
    .meta({ description: 'Only the entries about this subject.', example: 'grant:17' }),
});

const auditPageResponse = z
  .object({
    entries: z.array(
      z.object({
        id: z.number().int(),
        at: z.iso.datetime(),
        actor: z.string().meta({ description: 'The name of the API key that acted.' }),
        action: z.enum(AUDIT_ACTIONS),
        subject: z.string().meta({ example: 'grant:17' }),
        before: z.unknown().meta({ description: 'What the subject was before (null for a creation).' }),
        after: z.unknown(),
        reason: z.string().nullable(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: 'AuditPage' });

const present = (entry: AuditEntry) => ({
  id: entry.id,
  at: entry.at.toISOString(),
  actor: entry.actor,
  action: entry.action,
  subject: entry.subject,
  before: entry.before,
  after: entry.after,
  reason: entry.reason,
});

/** The audit log of operator actions, newest first (admin keys). */
export const auditRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/audit',
    role: 'admin',
    summary: 'The audit log of operator actions, newest first',
    description:
      'Review decisions, manual and promotional grants, voids: who (the API key name), what, when, before, after, why. ' +
      'Append-only: the database refuses to change or delete an entry.',
    query: auditQuery,
    responses: { 200: ['One page; `nextCursor` is null on the last.', auditPageResponse] },
    errors: { 400: 'Bad limit, cursor or subject.' },
    handler: async ({ query, deps }) => {
      const rows = await listAudit(deps.sql, {
        limit: query.limit + 1,
        beforeId: decodeCursor(query.cursor),
        subject: query.subject,
      });
      const { items, nextCursor } = pageOf(rows, query.limit);
      return { status: 200, body: { entries: items.map(present), nextCursor } };
    },
  }),
];
