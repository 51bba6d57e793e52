import { Router } from 'express';
import { z } from 'zod';
import type { Sql } from '../../db/client';
import { findPurchase } from '../../db/purchases';
import { errors, parseOrThrow } from '../errors';

const purchaseParams = z.object({
  checkoutSessionId: z.string().regex(/^cs_\w{1,200}$/, 'a checkout session ID (cs_…)'),
});

export function purchasesRouter({ sql }: { sql: Sql }): Router {
  const router = Router();
  router.get('/v1/purchases/:checkoutSessionId', async (req, res) => {
    const { checkoutSessionId } = parseOrThrow(purchaseParams, req.params);
    const purchase = await findPurchase(sql, checkoutSessionId);
    if (!purchase) throw errors.notFound(`Purchase ${checkoutSessionId}`);
    res.json({
      id: purchase.id,
      status: purchase.status,
      credits: purchase.credits,
      accountId: purchase.accountId,
      packId: purchase.packId,
      reasonCode: purchase.reasonCode,
      reason: purchase.reason,
      workflowId: purchase.workflowId,
      ledgerEntryId: purchase.ledgerEntryId,
      updatedAt: purchase.updatedAt.toISOString(),
    });
  });
  return router;
}
