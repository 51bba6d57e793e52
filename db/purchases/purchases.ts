import { toSafeInteger } from '../../domain/integers';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import type { PurchaseRecordStatus } from '../../domain/purchase-records';
import type { Queryable } from '../client';
import { outboundEventId, queueOutboundEvent } from '../outbound-webhooks/events';

export type { PurchaseRecordStatus } from '../../domain/purchase-records';

/** What was bought: a checkout session (packs), a subscription invoice (one billing period), or an automatic top-up. */
export type PurchaseKind = 'checkout_session' | 'invoice' | 'topup';

export interface Purchase {
  id: string;
  accountId: string | null;
  packId: string | null;
  credits: number | null;
  amountCents: number | null;
  currency: string | null;
  livemode: boolean;
  status: PurchaseRecordStatus;
  reasonCode: string | null;
  reason: string | null;
  workflowId: string;
  ledgerEntryId: number | null;
  /** The credit grant the purchase created, once granted. */
  grantId: number | null;
  paymentIntentId: string | null;
  updatedAt: Date;
}

type OptionalFacts = 'reasonCode' | 'reason' | 'ledgerEntryId' | 'grantId' | 'paymentIntentId';

/** What `recordPurchase` writes: a purchase as stored, where the facts not yet known may be left out. */
export type PurchaseRecord = Omit<Purchase, OptionalFacts | 'updatedAt'> &
  Partial<Pick<Purchase, OptionalFacts>> & {
    /** Defaults to 'checkout_session'. */
    kind?: PurchaseKind;
  };

/** What a checkout session says about its purchase, whatever its outcome. */
export function checkoutPurchaseFacts(
  session: CheckoutSessionSummary,
): Pick<PurchaseRecord, 'id' | 'packId' | 'amountCents' | 'currency' | 'livemode' | 'paymentIntentId'> {
  return {
    id: session.id,
    packId: session.packId,
    amountCents: session.amountTotal,
    currency: session.currency,
    livemode: session.livemode,
    paymentIntentId: session.paymentIntentId,
  };
}

/**
 * Records what is known about a purchase. A completed purchase is final: no later event (a
 * late "unpaid" delivery, a rejection of a duplicate) can move it back. A failed or expired
 * payment is final too, except that a grant still completes it.
 */
export async function recordPurchase(sql: Queryable, record: PurchaseRecord): Promise<PurchaseRecordStatus> {
  const [row] = await sql<{ status: PurchaseRecordStatus }[]>`
    INSERT INTO purchases (id, kind, account_id, pack_id, credits, amount_cents, currency, livemode,
                           status, reason_code, reason, workflow_id, ledger_entry_id, grant_id, payment_intent_id)
    VALUES (${record.id}, ${record.kind ?? 'checkout_session'}, ${record.accountId}, ${record.packId}, ${record.credits},
            ${record.amountCents}, ${record.currency}, ${record.livemode}, ${record.status},
            ${record.reasonCode ?? null}, ${record.reason ?? null}, ${record.workflowId},
            ${record.ledgerEntryId ?? null}, ${record.grantId ?? null}, ${record.paymentIntentId ?? null})
    ON CONFLICT (id) DO UPDATE SET
      account_id = EXCLUDED.account_id, pack_id = EXCLUDED.pack_id, credits = EXCLUDED.credits,
      amount_cents = EXCLUDED.amount_cents, currency = EXCLUDED.currency, status = EXCLUDED.status,
      reason_code = EXCLUDED.reason_code, reason = EXCLUDED.reason, workflow_id = EXCLUDED.workflow_id,
      ledger_entry_id = EXCLUDED.ledger_entry_id, grant_id = EXCLUDED.grant_id,
      payment_intent_id = COALESCE(EXCLUDED.payment_intent_id, purchases.payment_intent_id), updated_at = now()
    WHERE purchases.status <> 'completed'
      AND (EXCLUDED.status = 'completed' OR purchases.status NOT IN ('payment_failed', 'expired'))
    RETURNING status`;
  const [kept] = row
    ? [row]
    : await sql<{ status: PurchaseRecordStatus }[]>`SELECT status FROM purchases WHERE id = ${record.id}`;
  const status = kept?.status ?? 'completed';
  // Again on a retry (same event ID, so once): the upsert may have committed without it.
  if (status === record.status) await queuePurchaseEvent(sql, record);
  return status;
}

/** Tells the clients' endpoints that a purchase completed or is held for review. */
async function queuePurchaseEvent(sql: Queryable, record: PurchaseRecord): Promise<void> {
  const type =
    record.status === 'completed'
      ? 'purchase.completed'
      : record.status === 'held_for_review'
        ? 'purchase.held_for_review'
        : null;
  if (type === null || record.accountId === null) return;
  await queueOutboundEvent(sql, {
    id: outboundEventId(type, record.id),
    type,
    accountId: record.accountId,
    data: {
      purchase_id: record.id,
      kind: record.kind ?? 'checkout_session',
      status: record.status,
      pack_id: record.packId,
      credits: record.credits,
      amount_cents: record.amountCents,
      currency: record.currency,
      livemode: record.livemode,
      grant_id: record.grantId ?? null,
      ledger_entry_id: record.ledgerEntryId ?? null,
      reason_code: record.reasonCode ?? null,
    },
  });
}

/**
 * Notes the payment intent that paid an invoice, when its `invoice.paid` event did not say
 * (Stripe leaves an invoice's payments out of events). A known payment intent is never replaced.
 */
export async function attachInvoicePaymentIntent(
  sql: Queryable,
  invoiceId: string,
  paymentIntentId: string,
): Promise<void> {
  await sql`
    UPDATE purchases SET payment_intent_id = ${paymentIntentId}, updated_at = now()
    WHERE id = ${invoiceId} AND kind = 'invoice' AND payment_intent_id IS NULL`;
}

interface PurchaseRow {
  id: string;
  account_id: string | null;
  pack_id: string | null;
  credits: string | null;
  amount_cents: string | null;
  currency: string | null;
  livemode: boolean;
  status: PurchaseRecordStatus;
  reason_code: string | null;
  reason: string | null;
  workflow_id: string;
  ledger_entry_id: string | null;
  grant_id: string | null;
  payment_intent_id: string | null;
  updated_at: Date;
}

const nullableInteger = (value: string | null, what: string) =>
  value === null ? null : toSafeInteger(value, what);

const PURCHASE_COLUMNS =
  'id, account_id, pack_id, credits, amount_cents, currency, livemode, status, reason_code, ' +
  'reason, workflow_id, ledger_entry_id, grant_id, payment_intent_id, updated_at';

export async function findPurchase(sql: Queryable, id: string): Promise<Purchase | null> {
  const [row] = await sql<PurchaseRow[]>`
    SELECT ${sql.unsafe(PURCHASE_COLUMNS)} FROM purchases WHERE id = ${id}`;
  return row ? toPurchase(row) : null;
}

/**
 * The purchases these workflows recorded last (a purchase names the workflow that wrote it
 * last; a session described by two events names one of them), and those with these IDs.
 */
export async function findPurchasesFor(
  sql: Queryable,
  lookup: { workflowIds: string[]; ids: string[] },
): Promise<Purchase[]> {
  if (lookup.workflowIds.length === 0 && lookup.ids.length === 0) return [];
  const rows = await sql<PurchaseRow[]>`
    SELECT ${sql.unsafe(PURCHASE_COLUMNS)} FROM purchases
    WHERE workflow_id = ANY(${lookup.workflowIds}::text[]) OR id = ANY(${lookup.ids}::text[])`;
  return rows.map(toPurchase);
}

function toPurchase(row: PurchaseRow): Purchase {
  return {
    id: row.id,
    accountId: row.account_id,
    packId: row.pack_id,
    credits: nullableInteger(row.credits, 'credits'),
    amountCents: nullableInteger(row.amount_cents, 'amount'),
    currency: row.currency,
    livemode: row.livemode,
    status: row.status,
    reasonCode: row.reason_code,
    reason: row.reason,
    workflowId: row.workflow_id,
    ledgerEntryId: nullableInteger(row.ledger_entry_id, 'ledger id'),
    grantId: nullableInteger(row.grant_id, 'grant id'),
    paymentIntentId: row.payment_intent_id,
    updatedAt: row.updated_at,
  };
}
