import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
import { emailKeys } from '../../email/templates';
import type { Queryable, Sql } from '../client';
import { createGrant, type LedgerEntry } from '../../credits/index';
import type { PurchaseGrant } from '../../domain/purchase-records';
import { isEmailQueued, queueReceipt } from '../email/outbox';
import { findPurchase, recordPurchase } from './purchases';

/** What the grant of a purchase answers. */
export interface GrantOutcome {
  ledgerEntryId: number;
  balanceAfter: number;
  /** False when another workflow credited this purchase: nothing changed here. */
  applied: boolean;
  /** The receipt to deliver, when this workflow made the grant. */
  receiptKey: string | null;
  /** The credit grant the purchase created. */
  grantId: number;
}

/**
 * What a grant answers when its key was recorded before. If this workflow recorded it (its
 * first attempt committed, but the completion never reached Temporal), the answer is the one
 * that attempt gave, receipt included; if another workflow did, nothing was granted here.
 */
export async function replayedGrant(
  tx: Queryable,
  purchaseId: string,
  workflowId: string,
  entry: LedgerEntry,
  grantId: number,
): Promise<GrantOutcome> {
  const purchase = await findPurchase(tx, purchaseId);
  const ours = purchase?.status === 'completed' && purchase.workflowId === workflowId;
  const receiptKey = emailKeys.receipt(purchaseId);
  return {
    ledgerEntryId: entry.id,
    balanceAfter: entry.balanceAfter,
    applied: ours,
    receiptKey: ours && (await isEmailQueued(tx, receiptKey)) ? receiptKey : null,
    grantId,
  };
}

/**
 * The grant of a checkout purchase, all or nothing: a paid grant without expiry keyed by the
 * session ID, the purchase marked completed and the receipt queued commit together.
 */
export async function grantPurchaseCredits(sql: Sql, grant: PurchaseGrant): Promise<GrantOutcome> {
  return sql.begin(async (tx) => {
    const reason = grant.approvedBy ? `approved by ${grant.approvedBy}` : `pack ${grant.packId ?? 'custom'}`;
    const created = await createGrant(tx, {
      accountId: grant.accountId,
      source: 'purchase',
      category: 'paid',
      priority: DEFAULT_PRIORITY.paid,
      expiresAt: null,
      amount: grant.credits,
      businessKey: grant.checkoutSessionId,
      kind: 'purchase',
      reason,
    });
    const { entry } = created;
    if (!created.applied) {
      return replayedGrant(tx, grant.checkoutSessionId, grant.workflowId, entry, created.grant.id);
    }
    await recordPurchase(tx, {
      id: grant.checkoutSessionId,
      accountId: grant.accountId,
      packId: grant.packId,
      credits: grant.credits,
      amountCents: grant.amountCents,
      currency: grant.currency,
      livemode: grant.livemode,
      status: 'completed',
      reasonCode: null,
      reason: grant.approvedBy ? `approved by ${grant.approvedBy}` : null,
      workflowId: grant.workflowId,
      ledgerEntryId: entry.id,
      grantId: created.grant.id,
      paymentIntentId: grant.paymentIntentId,
    });
    const receiptKey = await queueReceipt(tx, {
      accountId: grant.accountId,
      packName: grant.packName,
      credits: grant.credits,
      amountCents: grant.amountCents ?? 0,
      currency: grant.currency ?? 'usd',
      balanceAfter: entry.balanceAfter,
      reference: grant.checkoutSessionId,
      workflowId: grant.workflowId,
    });
    return {
      ledgerEntryId: entry.id,
      balanceAfter: entry.balanceAfter,
      applied: true,
      receiptKey,
      grantId: created.grant.id,
    };
  });
}
