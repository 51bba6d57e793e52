import { toSafeInteger } from '../domain/integers';
import {
  creditsToRevoke,
  NO_REVERSAL,
  type DisputeState,
  type ReversalFacts,
} from '../domain/reversal-rules';
import type { Queryable, Sql } from './client';
import { applyCreditMovement } from './ledger';
import type { PurchaseRecordStatus } from './purchases';

/** A change a refund or dispute event reports about the purchase its payment intent paid for. */
export interface ReversalEvent {
  paymentIntentId: string;
  currency: string;
  /** The ledger key of the movement this event makes, if it makes one. */
  businessKey: string;
  /** The ledger kind of that movement ('refund', 'dispute', 'dispute_won'…). */
  kind: string;
  /** Why, in words, for the ledger. */
  reason: string;
  /** The new facts, from the stored ones; `conflict` reports a change that cannot apply. */
  update(facts: ReversalFacts): { facts: ReversalFacts; conflict?: boolean };
}

export type ReversalOutcome =
  /** The payment is not (yet) a purchase we know, or its grant is still pending. */
  | { outcome: 'purchase_unknown' | 'purchase_pending' }
  /** The purchase ended without credits: nothing to take back. */
  | { outcome: 'not_granted'; purchaseId: string; accountId: string | null; status: PurchaseRecordStatus }
  | { outcome: 'currency_mismatch' | 'dispute_conflict'; purchaseId: string; accountId: string }
  | {
      outcome: 'applied' | 'no_change' | 'already_applied';
      purchaseId: string;
      accountId: string;
      /** Credits moved by this event: negative revokes, positive restores. */
      delta: number;
      revokedCredits: number;
      ledgerEntryId: number | null;
      balanceAfter: number | null;
    };

interface PurchaseRow {
  id: string;
  account_id: string | null;
  status: PurchaseRecordStatus;
  credits: string | null;
  amount_cents: string | null;
  currency: string | null;
}

const PENDING: ReadonlySet<PurchaseRecordStatus> = new Set(['awaiting_payment', 'held_for_review']);

/**
 * Applies a refund or dispute event to the purchase paid by its payment intent, in one
 * transaction: merge the event into the purchase's facts, then move the credits revoked from
 * the purchase to what the facts call for (one ledger row under the event's key, if anything
 * moves). Locks the account's balance row before the purchase, the order grants use.
 */
export async function applyPurchaseReversal(sql: Sql, event: ReversalEvent): Promise<ReversalOutcome> {
  const [found] = await sql<{ id: string; account_id: string | null }[]>`
    SELECT id, account_id FROM purchases WHERE payment_intent_id = ${event.paymentIntentId}`;
  if (!found) return { outcome: 'purchase_unknown' };
  return sql.begin(async (tx) => {
    if (found.account_id) {
      await tx`SELECT 1 FROM credit_balances WHERE account_id = ${found.account_id} FOR UPDATE`;
    }
    const [purchase] = await tx<PurchaseRow[]>`
      SELECT id, account_id, status, credits, amount_cents, currency FROM purchases
      WHERE id = ${found.id} FOR UPDATE`;
    if (!purchase) return { outcome: 'purchase_unknown' as const };
    // Granted since the first read: try again, so the balance is still locked first.
    if (PENDING.has(purchase.status) || purchase.account_id !== found.account_id) {
      return { outcome: 'purchase_pending' as const };
    }
    if (purchase.status !== 'completed' || !purchase.account_id || purchase.credits === null) {
      return {
        outcome: 'not_granted' as const,
        purchaseId: purchase.id,
        accountId: purchase.account_id,
        status: purchase.status,
      };
    }
    const accountId = purchase.account_id;
    const subject = { purchaseId: purchase.id, accountId };
    if (purchase.currency !== null && purchase.currency !== event.currency) {
      return { outcome: 'currency_mismatch' as const, ...subject };
    }

    const [done] = await tx<{ id: string; delta: string; balance_after: string }[]>`
      SELECT id, delta, balance_after FROM credit_ledger WHERE business_key = ${event.businessKey}`;
    const stored = await lockFacts(tx, purchase.id);
    if (done) {
      return {
        outcome: 'already_applied' as const,
        ...subject,
        delta: toSafeInteger(done.delta),
        revokedCredits: stored.revoked,
        ledgerEntryId: toSafeInteger(done.id),
        balanceAfter: toSafeInteger(done.balance_after),
      };
    }
    const { facts, conflict } = event.update(stored.facts);
    if (conflict) return { outcome: 'dispute_conflict' as const, ...subject };

    const terms = {
      credits: toSafeInteger(purchase.credits, 'credits'),
      amountCents: purchase.amount_cents === null ? null : toSafeInteger(purchase.amount_cents, 'amount'),
    };
    const target = creditsToRevoke(terms, facts);
    const delta = stored.revoked - target;
    let moved: { id: number; balanceAfter: number } | null = null;
    if (delta !== 0) {
      const { entry } = await applyCreditMovement(tx, {
        accountId,
        delta,
        kind: event.kind,
        businessKey: event.businessKey,
        reason: `${event.reason}: ${target} of ${terms.credits} credits of ${purchase.id} now revoked`,
      });
      moved = { id: entry.id, balanceAfter: entry.balanceAfter };
    }
    await tx`
      UPDATE purchase_reversals SET refunded_cents = ${facts.refundedCents}, dispute_id = ${facts.disputeId},
             dispute_state = ${facts.disputeState}, revoked_credits = ${target}, updated_at = now()
      WHERE purchase_id = ${purchase.id}`;
    return {
      outcome: moved ? ('applied' as const) : ('no_change' as const),
      ...subject,
      delta,
      revokedCredits: target,
      ledgerEntryId: moved?.id ?? null,
      balanceAfter: moved?.balanceAfter ?? null,
    };
  });
}

async function lockFacts(
  tx: Queryable,
  purchaseId: string,
): Promise<{ facts: ReversalFacts; revoked: number }> {
  await tx`INSERT INTO purchase_reversals (purchase_id) VALUES (${purchaseId}) ON CONFLICT DO NOTHING`;
  const [row] = await tx<
    {
      refunded_cents: string;
      dispute_id: string | null;
      dispute_state: DisputeState | null;
      revoked_credits: string;
    }[]
  >`
    SELECT refunded_cents, dispute_id, dispute_state, revoked_credits FROM purchase_reversals
    WHERE purchase_id = ${purchaseId} FOR UPDATE`;
  if (!row) return { facts: NO_REVERSAL, revoked: 0 };
  return {
    facts: {
      refundedCents: toSafeInteger(row.refunded_cents, 'refunded cents'),
      disputeId: row.dispute_id,
      disputeState: row.dispute_state,
    },
    revoked: toSafeInteger(row.revoked_credits, 'revoked credits'),
  };
}
