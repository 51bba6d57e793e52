import { Router } from 'express';
import type { Sql } from '../../db/client';
import { grantSubject, recordAudit } from '../../db/audit/audit-log';
import {
  closeGrantIn,
  createGrant,
  findGrant,
  listGrants,
  summarizeCredits,
  type Grant,
} from '../../credits/grants';
import { accountScopedKey } from '../../credits/debits';
import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
import { requireRole } from '../auth';
import { decodeCursor, pageOf } from '../cursors';
import { errors, parseOrThrow } from '../errors';
import { accountParams, createGrantBody, grantParams, ledgerQuery, voidGrantBody } from '../schemas';
import { requireAccount } from './accounts';

export const presentGrant = (grant: Grant) => ({
  id: grant.id,
  source: grant.source,
  category: grant.category,
  priority: grant.priority,
  amount: grant.amount,
  remaining: grant.remaining,
  status: grant.closedReason ?? 'live',
  effectiveAt: grant.effectiveAt.toISOString(),
  expiresAt: grant.expiresAt?.toISOString() ?? null,
  reference: grant.businessKey,
  reason: grant.reason,
  createdBy: grant.createdBy,
  createdAt: grant.createdAt.toISOString(),
});

/**
 * Promotional and manual grants, and their voiding (admin keys): each records the API key that
 * did it, and writes its audit entry in the same transaction as the credits it moves.
 */
export function grantsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();

  async function requireGrant(accountId: string, grantId: number): Promise<Grant> {
    const grant = await findGrant(sql, grantId);
    if (!grant || grant.accountId !== accountId) throw errors.grantNotFound(grantId);
    return grant;
  }

  router.get('/v1/accounts/:id/grants', requireRole('read'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const query = parseOrThrow(ledgerQuery, req.query);
    await requireAccount(sql, id);
    const rows = await listGrants(sql, id, { limit: query.limit + 1, beforeId: decodeCursor(query.cursor) });
    const { items, nextCursor } = pageOf(rows, query.limit);
    res.json({ grants: items.map(presentGrant), nextCursor });
  });

  router.post('/v1/accounts/:id/grants', requireRole('admin'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(createGrantBody, req.body);
    await requireAccount(sql, id);
    const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
    if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
      throw errors.invalidValue('expiresAt', 'must be in the future');
    }
    const createdBy = String(res.locals.apiKeyName);
    const { grant, applied } = await sql.begin(async (tx) => {
      const made = await createGrant(tx, {
        accountId: id,
        source: body.category === 'paid' ? 'manual' : 'promotional',
        category: body.category,
        priority: body.priority ?? DEFAULT_PRIORITY[body.category],
        expiresAt,
        amount: body.amount,
        businessKey: accountScopedKey('grant', id, body.idempotencyKey),
        kind: body.category === 'paid' ? 'manual_grant' : 'promotional_grant',
        reason: body.reason,
        createdBy,
      });
      // A replay changes nothing, so it records nothing.
      if (made.applied) {
        await recordAudit(tx, {
          actor: createdBy,
          action: 'grant.created',
          subject: grantSubject(made.grant.id),
          before: { accountId: id, balance: made.entry.balanceAfter - made.grant.amount },
          after: { accountId: id, balance: made.entry.balanceAfter, grant: presentGrant(made.grant) },
          reason: body.reason,
        });
      }
      return made;
    });
    const same =
      grant.amount === body.amount &&
      grant.category === body.category &&
      grant.priority === (body.priority ?? DEFAULT_PRIORITY[body.category]) &&
      grant.reason === body.reason &&
      (grant.expiresAt?.getTime() ?? null) === (expiresAt?.getTime() ?? null);
    if (!applied && !same) throw errors.idempotencyKeyReused();
    res.status(applied ? 201 : 200).json(presentGrant(grant));
  });

  router.post('/v1/accounts/:id/grants/:grantId/void', requireRole('admin'), async (req, res) => {
    const { id, grantId } = parseOrThrow(grantParams, req.params);
    const body = parseOrThrow(voidGrantBody, req.body);
    await requireGrant(id, grantId);
    const who = String(res.locals.apiKeyName);
    const { grant } = await sql.begin(async (tx) => {
      const closed = await closeGrantIn(tx, grantId, {
        as: 'voided',
        reason: `voided by ${who}: ${body.reason}`,
      });
      // Voiding a closed grant changes nothing, so it records nothing.
      if (closed.closedNow) {
        const { balance } = await summarizeCredits(tx, id);
        const voided = closed.before.remaining;
        await recordAudit(tx, {
          actor: who,
          action: 'grant.voided',
          subject: grantSubject(grantId),
          before: { accountId: id, balance: balance + voided, grant: presentGrant(closed.before) },
          after: { accountId: id, balance, grant: presentGrant(closed.grant) },
          reason: body.reason,
        });
      }
      return closed;
    });
    res.json(presentGrant(grant));
  });

  return router;
}
