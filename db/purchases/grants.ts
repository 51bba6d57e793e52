import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
import { BillingError } from '../../domain/errors';
import { emailKeys } from '../../email/templates';
import type { Queryable, Sql } from '../client';
import { createGrant, type LedgerEntry } from '../../credits/index';
import type { PurchaseGrant } from '../../domain/purchase-records';
import {
  findReviewAudit,
  recordReviewDecision,
  type ReviewDecisionRecord,
  type ReviewEffect,
} from '../audit/audit-log';
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
  /** The audit entry of the reviewer's decision this grant applied, when one did. */
  auditId?: number | null;
}

/** Why the ledger refused a grant: nothing was granted, and retrying as it is cannot change that. */
export type GrantRefusalCode = 'balance_out_of_range' | 'account_not_found';

/**
 * A grant the ledger refused. Its transaction rolled back; what was written after it, in a
 * transaction of its own, is a reviewer's attempt in the audit log (`auditId`) or, for a grant
 * no reviewer asked for, the purchase held for review with this reason.
 */
export interface GrantRefusal {
  refusal: { code: GrantRefusalCode; reason: string };
  auditId: number | null;
}

export const isGrantRefusal = (answer: object): answer is GrantRefusal => 'refusal' in answer;

/** The refusal a grant's error stands for, or null when it is not one (an outage: retry). */
export function grantRefusalOf(error: unknown): GrantRefusal['refusal'] | null {
  if (!(error instanceof BillingError)) return null;
  if (error.code !== 'balance_out_of_range' && error.code !== 'account_not_found') return null;
  return { code: error.code, reason: error.message };
}

/**
 * Records a reviewer's approval the ledger refused, in its own transaction (the grant's rolled
 * back, so nothing else changed): the payment stays held, and the attempt is in the audit log.
 */
export async function recordRefusedApproval(
  sql: Queryable,
  review: ReviewDecisionRecord,
  refusal: GrantRefusal['refusal'],
): Promise<GrantRefusal> {
  const auditId = await recordReviewDecision(sql, review, {
    applied: false,
    stage: 'held_for_review',
    granted: null,
    ledgerEntryId: null,
    reasonCode: refusal.code,
    reason: refusal.reason,
  });
  return { refusal, auditId };
}

/**
 * The audit row of an approval, in the grant's transaction: written with what the grant did,
 * or (the grant recorded before) found under the decision's key, or written then as not
 * applied when another workflow's grant came first.
 */
export async function auditApproval(
  tx: Queryable,
  review: ReviewDecisionRecord | null,
  outcome: { applied: boolean; ledgerEntryId: number },
  effect: Pick<ReviewEffect, 'stage' | 'granted'>,
  replayed: boolean,
): Promise<number | null> {
  if (review === null) return null;
  if (replayed && outcome.applied) return findReviewAudit(tx, review.key);
  return recordReviewDecision(tx, review, {
    applied: outcome.applied,
    stage: outcome.applied ? effect.stage : 'already_granted',
    granted: outcome.applied ? effect.granted : null,
    ledgerEntryId: outcome.ledgerEntryId,
    reasonCode: outcome.applied ? null : 'already_granted',
    reason: outcome.applied ? null : 'another event for this payment granted it first',
  });
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
 * session ID, the purchase marked completed, the receipt queued and, for a reviewer's approval,
 * its audit row commit together. A refusal of the ledger throws (see `grantRefusalOf`).
 */
export async function grantPurchaseCredits(
  sql: Sql,
  grant: PurchaseGrant,
  review: ReviewDecisionRecord | null = null,
): Promise<GrantOutcome> {
  const approvalEffect = { stage: 'sending_receipt', granted: grant.credits };
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
      const replay = await replayedGrant(
        tx,
        grant.checkoutSessionId,
        grant.workflowId,
        entry,
        created.grant.id,
      );
      return { ...replay, auditId: await auditApproval(tx, review, replay, approvalEffect, true) };
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
    const outcome = {
      ledgerEntryId: entry.id,
      balanceAfter: entry.balanceAfter,
      applied: true,
      receiptKey,
      grantId: created.grant.id,
    };
    return { ...outcome, auditId: await auditApproval(tx, review, outcome, approvalEffect, false) };
  });
}
