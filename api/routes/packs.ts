import { Router } from 'express';
import type { Sql } from '../../db/client';
import { listActivePacks } from '../../db/catalog';

export function packsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();
  router.get('/v1/packs', async (_req, res) => {
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
