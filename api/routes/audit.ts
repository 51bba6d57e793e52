import { Router } from 'express';
import { listAudit, type AuditEntry } from '../../db/audit/audit-log';
import type { Sql } from '../../db/client';
import { requireRole } from '../auth';
import { decodeCursor, pageOf } from '../cursors';
import { parseOrThrow } from '../errors';
import { auditQuery } from '../schemas';

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
export function auditRouter({ sql }: { sql: Sql }): Router {
  const router = Router();
  router.get('/v1/audit', requireRole('admin'), async (req, res) => {
    const query = parseOrThrow(auditQuery, req.query);
    const rows = await listAudit(sql, {
      limit: query.limit + 1,
      beforeId: decodeCursor(query.cursor),
      subject: query.subject,
    });
    const { items, nextCursor } = pageOf(rows, query.limit);
    res.json({ entries: items.map(present), nextCursor });
  });
  return router;
}
