import { toSafeInteger } from '../../domain/integers';
import type { Queryable, Sql } from '../client';

export interface CheckoutSnapshot {
  id: string;
  accountId: string;
  packId: string | null;
  credits: number;
  amountCents: number;
  currency: string;
  url: string | null;
  idempotencyKey: string | null;
  requestFingerprint: string;
}

interface SnapshotRow {
  id: string;
  account_id: string;
  pack_id: string | null;
  credits: string;
  amount_cents: string;
  currency: string;
  url: string | null;
  idempotency_key: string | null;
  request_fingerprint: string;
}

const COLUMNS =
  'id, account_id, pack_id, credits, amount_cents, currency, url, idempotency_key, request_fingerprint';

function toSnapshot(row: SnapshotRow): CheckoutSnapshot {
  return {
    id: row.id,
    accountId: row.account_id,
    packId: row.pack_id,
    credits: toSafeInteger(row.credits, 'credits'),
    amountCents: toSafeInteger(row.amount_cents, 'amount'),
    currency: row.currency,
    url: row.url,
    idempotencyKey: row.idempotency_key,
    requestFingerprint: row.request_fingerprint,
  };
}

/** Stores the snapshot; a session stored before (a replayed request) is returned unchanged. */
export async function saveCheckoutSnapshot(sql: Sql, snapshot: CheckoutSnapshot): Promise<CheckoutSnapshot> {
  const [row] = await sql<SnapshotRow[]>`
    INSERT INTO checkout_sessions (id, account_id, pack_id, credits, amount_cents, currency, url,
                                   idempotency_key, request_fingerprint)
    VALUES (${snapshot.id}, ${snapshot.accountId}, ${snapshot.packId}, ${snapshot.credits},
            ${snapshot.amountCents}, ${snapshot.currency}, ${snapshot.url}, ${snapshot.idempotencyKey},
            ${snapshot.requestFingerprint})
    ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id
    RETURNING ${sql.unsafe(COLUMNS)}`;
  if (!row) throw new Error(`checkout session ${snapshot.id} was not stored`);
  return toSnapshot(row);
}

export async function findCheckoutSnapshot(sql: Queryable, id: string): Promise<CheckoutSnapshot | null> {
  const [row] = await sql<
    SnapshotRow[]
  >`SELECT ${sql.unsafe(COLUMNS)} FROM checkout_sessions WHERE id = ${id}`;
  return row ? toSnapshot(row) : null;
}

export async function findCheckoutByIdempotencyKey(sql: Sql, key: string): Promise<CheckoutSnapshot | null> {
  const [row] = await sql<SnapshotRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM checkout_sessions WHERE idempotency_key = ${key}`;
  return row ? toSnapshot(row) : null;
}

export async function nextCheckoutRequestNumber(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: string }[]>`SELECT nextval('checkout_request_seq')::text AS n`;
  return toSafeInteger(row?.n ?? '0', 'checkout request number');
}
