import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Sql } from '../../db/client';
import { findPurchase } from '../../db/purchases/purchases';
import { statusQuery, type PurchaseWorkflowStatus } from '../../workflows/purchases/contract';
import { errors, parseOrThrow } from '../errors';
import { purchaseParams } from '../schemas';
import { requireRole } from '../auth';

const QUERY_TIMEOUT_MS = 2000;

export function purchasesRouter({ sql, temporal }: { sql: Sql; temporal: Client }): Router {
  const router = Router();

  /** What a still-running purchase workflow says of itself; null once it has finished or is unreachable. */
  async function liveStatus(workflowId: string): Promise<PurchaseWorkflowStatus | null> {
    try {
      return await temporal.withDeadline(Date.now() + QUERY_TIMEOUT_MS, async () => {
        const handle = temporal.workflow.getHandle(workflowId);
        const { status } = await handle.describe();
        return status.name === 'RUNNING' ? await handle.query(statusQuery) : null;
      });
    } catch {
      // The stored record is the answer; the live view is a bonus.
      return null;
    }
  }

  router.get('/v1/purchases/:checkoutSessionId', requireRole('read'), async (req, res) => {
    const { checkoutSessionId } = parseOrThrow(purchaseParams, req.params);
    const purchase = await findPurchase(sql, checkoutSessionId);
    if (!purchase) throw errors.purchaseNotFound(checkoutSessionId);
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
      workflow: purchase.status === 'completed' ? null : await liveStatus(purchase.workflowId),
    });
  });
  return router;
}
