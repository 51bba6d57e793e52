import { toSafeInteger } from '../../domain/integers';
import {
  creditsToRevoke,
  NO_REVERSAL,
  type DisputeState,
  type ReversalFacts,
} from '../../domain/reversal-rules';
import type { Queryable, Sql } from '../client';
import { reviseRevocation, lockAccountBalance } from '../../credits/index';
import type { PurchaseRecordStatus } from '../../domain/purchase-records';

/** What applying a refund or dispute answers. */
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

interface PurchaseRow {
  id: string;
  account_id: string | null;
  status: PurchaseRecordStatus;
  credits: string | null;
  amount_cents: string | null;
  currency: string | null;
  grant_id: string | null;
}

const PENDING: ReadonlySet<PurchaseRecordStatus> = new Set(['awaiting_payment', 'held_for_review']);

/**
 * Applies a refund or dispute event to the purchase paid by its payment intent, in one
 * transaction: merge the event into the purchase's facts, then move what is revoked from the
 * purchase's grant to what the facts call for (one ledger row under the event's key, if anything
 * moves). The outcome is stored under the event's key: a retry of the same workflow answers it
 * again, whatever happened since; another workflow with the same key is told it was applied.
 */
export async function applyPurchaseReversal(
  sql: Sql,
  event: ReversalEvent,
  workflowId: string,
): Promise<ReversalOutcome> {
  const [found] = await sql<{ id: string; account_id: string | null }[]>`
    SELECT id, account_id FROM purchases WHERE payment_intent_id = ${event.paymentIntentId}`;
  if (!found) return { outcome: 'purchase_unknown' };
  return sql.begin(async (tx): Promise<ReversalOutcome> => {
    if (found.account_id) await lockAccountBalance(tx, found.account_id);
    const [stored] = await tx<{ workflow_id: string; outcome: ReversalOutcome }[]>`
      SELECT workflow_id, outcome FROM movement_outcomes WHERE business_key = ${event.businessKey}`;
    if (stored) {
      if (stored.workflow_id === workflowId || stored.outcome.outcome !== 'applied') return stored.outcome;
      return { ...stored.outcome, outcome: 'already_applied' };
    }
    const [purchase] = await tx<PurchaseRow[]>`
      SELECT id, account_id, status, credits, amount_cents, currency, grant_id FROM purchases
      WHERE id = ${found.id} FOR UPDATE`;
    if (!purchase) return { outcome: 'purchase_unknown' };
    // Granted since the first read: try again, so the balance is still locked first.
    if (PENDING.has(purchase.status) || purchase.account_id !== found.account_id) {
      return { outcome: 'purchase_pending' };
    }
    if (
      purchase.status !== 'completed' ||
      !purchase.account_id ||
      purchase.credits === null ||
      purchase.grant_id === null
    ) {
      return {
        outcome: 'not_granted',
        purchaseId: purchase.id,
        accountId: purchase.account_id,
        status: purchase.status,
      };
    }
    const accountId = purchase.account_id;
    const subject = { purchaseId: purchase.id, accountId };
    if (purchase.currency !== null && purchase.currency !== event.currency) {
      return { outcome: 'currency_mismatch', ...subject };
    }
    const known = await lockFacts(tx, purchase.id);
    const { facts, conflict } = event.update(known.facts);
    if (conflict) return { outcome: 'dispute_conflict', ...subject };

    const terms = {
      credits: toSafeInteger(purchase.credits, 'credits'),
      amountCents: purchase.amount_cents === null ? null : toSafeInteger(purchase.amount_cents, 'amount'),
    };
    const target = creditsToRevoke(terms, facts);
    const moved = await reviseRevocation(tx, toSafeInteger(purchase.grant_id, 'grant id'), target, {
      businessKey: event.businessKey,
      kind: event.kind,
      reason: `${event.reason}: ${target} of ${terms.credits} credits of ${purchase.id} to be revoked`,
    });
    await tx`
      UPDATE purchase_reversals SET refunded_cents = ${facts.refundedCents}, dispute_id = ${facts.disputeId},
             dispute_state = ${facts.disputeState}, revoked_credits = ${moved.revoked}, updated_at = now()
      WHERE purchase_id = ${purchase.id}`;
    const outcome: ReversalOutcome = {
      outcome: moved.entry ? 'applied' : 'no_change',
      ...subject,
      delta: moved.delta,
      revokedCredits: moved.revoked,
      ledgerEntryId: moved.entry?.id ?? null,
      balanceAfter: moved.entry?.balanceAfter ?? null,
    };
    await tx`
      INSERT INTO movement_outcomes (business_key, workflow_id, outcome)
      VALUES (${event.businessKey}, ${workflowId}, ${tx.json(outcome)})`;
    return outcome;
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
