import { Router } from 'express';
import type { Sql } from '../../db/client';
import { listActivePacks } from '../../db/catalog/packs';
import { requireRole } from '../auth';

export function packsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();
  router.get('/v1/packs', requireRole('read'), async (_req, res) => {
    const packs = await listActivePacks(sql);
    res.json({
      packs: packs.map(({ id, name, credits, priceCents, currency }) => ({
        id,
        name,
        credits,
        amountCents: priceCents,
        currency,
      })),
    });
  });
  return router;
}
