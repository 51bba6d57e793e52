import { Router } from 'express';
import type { Sql } from '../../db/client';
import { closeGrant, createGrant, findGrant, listGrants, type Grant } from '../../db/credit-grants';
import { accountScopedKey } from '../../db/debits';
import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
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

/** Promotional and manual grants, and their voiding; each records the API key that did it. */
export function grantsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();

  async function requireGrant(accountId: string, grantId: number): Promise<Grant> {
    const grant = await findGrant(sql, grantId);
    if (!grant || grant.accountId !== accountId) throw errors.grantNotFound(grantId);
    return grant;
  }

  router.get('/v1/accounts/:id/grants', async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const query = parseOrThrow(ledgerQuery, req.query);
    await requireAccount(sql, id);
    const rows = await listGrants(sql, id, { limit: query.limit + 1, beforeId: decodeCursor(query.cursor) });
    const { items, nextCursor } = pageOf(rows, query.limit);
    res.json({ grants: items.map(presentGrant), nextCursor });
  });

  router.post('/v1/accounts/:id/grants', async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(createGrantBody, req.body);
    await requireAccount(sql, id);
    const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
    if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
      throw errors.invalidValue('expiresAt', 'must be in the future');
    }
    const createdBy = String(res.locals.apiKeyName);
    const { grant, applied } = await sql.begin((tx) =>
      createGrant(tx, {
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
      }),
    );
    const same =
      grant.amount === body.amount &&
      grant.category === body.category &&
      grant.reason === body.reason &&
      (grant.expiresAt?.getTime() ?? null) === (expiresAt?.getTime() ?? null);
    if (!applied && !same) throw errors.idempotencyKeyReused();
    res.status(applied ? 201 : 200).json(presentGrant(grant));
  });

  router.post('/v1/accounts/:id/grants/:grantId/void', async (req, res) => {
    const { id, grantId } = parseOrThrow(grantParams, req.params);
    const body = parseOrThrow(voidGrantBody, req.body);
    await requireGrant(id, grantId);
    const who = String(res.locals.apiKeyName);
    const { grant } = await closeGrant(sql, grantId, {
      as: 'voided',
      reason: `voided by ${who}: ${body.reason}`,
    });
    res.json(presentGrant(grant));
  });

  return router;
}
