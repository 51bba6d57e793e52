import { renderPurchaseReceipt } from '../domain/receipt';
import type { Sql } from './client';
import { applyCreditMovement } from './ledger';
import { enqueueEmail } from './outbox';
import { recordPurchase } from './purchases';

export interface PurchaseGrant {
  checkoutSessionId: string;
  accountId: string;
  packId: string | null;
  packName: string;
  credits: number;
  amountCents: number | null;
  currency: string | null;
  livemode: boolean;
  /** The payment's intent, through which later refunds and disputes find this purchase. */
  paymentIntentId: string | null;
  workflowId: string;
  /** Why credits were granted when validation alone did not allow it (an operator's approval). */
  approvedBy?: string | null;
}

export interface GrantOutcome {
  ledgerEntryId: number;
  balanceAfter: number;
  /** False when this session was already credited: nothing changed. */
  applied: boolean;
  /** The receipt to deliver, when this call made the grant. */
  receiptKey: string | null;
}

export const receiptKeyFor = (checkoutSessionId: string) => `receipt:${checkoutSessionId}`;

/**
 * The grant of a checkout purchase, all or nothing: the ledger row keyed by the session ID, the
 * balance, the purchase marked completed and the receipt queued commit together.
 */
export async function grantPurchaseCredits(sql: Sql, grant: PurchaseGrant): Promise<GrantOutcome> {
  return sql.begin(async (tx) => {
    const { entry, applied } = await applyCreditMovement(tx, {
      accountId: grant.accountId,
      delta: grant.credits,
      kind: 'purchase',
      businessKey: grant.checkoutSessionId,
      reason: grant.approvedBy ? `approved by ${grant.approvedBy}` : `pack ${grant.packId ?? 'custom'}`,
    });
    if (!applied) {
      return { ledgerEntryId: entry.id, balanceAfter: entry.balanceAfter, applied, receiptKey: null };
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
      paymentIntentId: grant.paymentIntentId,
    });
    const [account] = await tx<{ email: string }[]>`SELECT email FROM accounts WHERE id = ${grant.accountId}`;
    const receiptKey = receiptKeyFor(grant.checkoutSessionId);
    const receipt = renderPurchaseReceipt({
      accountId: grant.accountId,
      packName: grant.packName,
      credits: grant.credits,
      amountCents: grant.amountCents ?? 0,
      currency: grant.currency ?? 'usd',
      balanceAfter: entry.balanceAfter,
      reference: grant.checkoutSessionId,
    });
    await enqueueEmail(tx, {
      key: receiptKey,
      accountId: grant.accountId,
      to: account?.email ?? '',
      subject: receipt.subject,
      text: receipt.text,
    });
    return { ledgerEntryId: entry.id, balanceAfter: entry.balanceAfter, applied, receiptKey };
  });
}
