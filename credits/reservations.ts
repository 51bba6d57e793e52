import { randomUUID } from 'node:crypto';
import { errors } from '../domain/errors';
import { toSafeInteger } from '../domain/integers';
import type { Queryable, Sql } from '../db/client';
import { dbNow, drawDown, summarizeCredits } from './grants';
import { keepHoldsCovered } from './holds';
import { lockAccountBalance, type LedgerEntry } from './ledger';

/**
 * Reservations hold credits for work not finished yet: `available = balance − held` never goes
 * below zero across concurrent holds and debits (both take the account's lock). A hold is
 * captured (all or part) into a debit drawn from grants like any other, released, or released
 * when its time is up. When credits it held go (they expire, are voided or taken back), it
 * shrinks to what is left (credits/holds.ts): `amount − shrunk` is what it holds.
 */

export type ReservationStatus = 'held' | 'captured' | 'released' | 'expired';

export interface Reservation {
  id: string;
  accountId: string;
  amount: number;
  status: ReservationStatus;
  captured: number | null;
  /** Credits it no longer holds because the credits behind it went, and why. */
  shrunk: number;
  shrinkReason: string | null;
  /** What it holds now: `amount − shrunk` while held, 0 once settled. */
  holding: number;
  idempotencyKey: string;
  expiresAt: Date;
  createdAt: Date;
  settledAt: Date | null;
}

interface ReservationRow {
  id: string;
  account_id: string;
  amount: string;
  status: ReservationStatus;
  captured: string | null;
  shrunk: string;
  shrink_reason: string | null;
  idempotency_key: string;
  expires_at: Date;
  created_at: Date;
  settled_at: Date | null;
}

const COLUMNS =
  'id, account_id, amount, status, captured, shrunk, shrink_reason, idempotency_key, expires_at, created_at, settled_at';

function toReservation(row: ReservationRow): Reservation {
  const amount = toSafeInteger(row.amount, 'reservation amount');
  const shrunk = toSafeInteger(row.shrunk, 'shrunk');
  return {
    id: row.id,
    accountId: row.account_id,
    amount,
    status: row.status,
    captured: row.captured === null ? null : toSafeInteger(row.captured, 'captured'),
    shrunk,
    shrinkReason: row.shrink_reason,
    holding: row.status === 'held' ? amount - shrunk : 0,
    idempotencyKey: row.idempotency_key,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    settledAt: row.settled_at,
  };
}

export const captureKey = (reservationId: string) => `capture:${reservationId}`;

async function lockReservation(tx: Queryable, accountId: string, id: string): Promise<Reservation> {
  const [row] = await tx<ReservationRow[]>`
    SELECT ${tx.unsafe(COLUMNS)} FROM credit_reservations WHERE id = ${id} AND account_id = ${accountId} FOR UPDATE`;
  if (!row) throw errors.reservationNotFound(id);
  return toReservation(row);
}

export async function findReservation(
  sql: Queryable,
  accountId: string,
  id: string,
): Promise<Reservation | null> {
  const [row] = await sql<ReservationRow[]>`
    SELECT ${sql.unsafe(COLUMNS)} FROM credit_reservations WHERE id = ${id} AND account_id = ${accountId}`;
  return row ? toReservation(row) : null;
}

/**
 * Holds credits once per idempotency key. A replay answers the same reservation; the same key
 * with another amount or TTL is a conflict.
 */
export async function holdCredits(
  sql: Sql,
  request: { accountId: string; amount: number; ttlSeconds: number; idempotencyKey: string },
): Promise<{ reservation: Reservation; created: boolean }> {
  return sql.begin(async (tx) => {
    await lockAccountBalance(tx, request.accountId);
    const [existing] = await tx<(ReservationRow & { ttl_seconds: number })[]>`
      SELECT ${tx.unsafe(COLUMNS)}, round(extract(epoch FROM expires_at - created_at))::int AS ttl_seconds
      FROM credit_reservations
      WHERE account_id = ${request.accountId} AND idempotency_key = ${request.idempotencyKey}`;
    if (existing) {
      const reservation = toReservation(existing);
      if (reservation.amount !== request.amount || existing.ttl_seconds !== request.ttlSeconds) {
        throw errors.idempotencyKeyReused({
          at: reservation.createdAt,
          made: `reservation ${reservation.id} (${reservation.amount} credits for ${existing.ttl_seconds} s)`,
          details: {
            reservationId: reservation.id,
            amount: reservation.amount,
            ttlSeconds: existing.ttl_seconds,
          },
        });
      }
      return { reservation, created: false };
    }
    const { available } = await summarizeCredits(tx, request.accountId);
    if (available < request.amount) throw errors.insufficientCredits(Math.max(available, 0), request.amount);
    const [row] = await tx<ReservationRow[]>`
      INSERT INTO credit_reservations (id, account_id, amount, idempotency_key, expires_at)
      VALUES (${`rsv_${randomUUID().replaceAll('-', '')}`}, ${request.accountId}, ${request.amount},
              ${request.idempotencyKey}, now() + make_interval(secs => ${request.ttlSeconds}))
      RETURNING ${tx.unsafe(COLUMNS)}`;
    if (!row) throw new Error('reservation insert returned nothing');
    await tx`UPDATE credit_balances SET held = held + ${request.amount} WHERE account_id = ${request.accountId}`;
    return { reservation: toReservation(row), created: true };
  });
}

/**
 * Turns a hold into a debit of `amount` (all it holds by default) and frees the rest. Capturing
 * again with the same amount answers the same debit; anything else after settlement is refused.
 */
export async function captureReservation(
  sql: Sql,
  request: { accountId: string; reservationId: string; amount?: number; reason: string },
): Promise<{ reservation: Reservation; entry: LedgerEntry; replayed: boolean; followUps: boolean }> {
  return sql.begin(async (tx) => {
    await lockAccountBalance(tx, request.accountId);
    // Credits that expired since (their grant not closed by the sweep yet) are not held any more.
    await keepHoldsCovered(tx, [request.accountId], 'the credits it held expired');
    const reservation = await lockReservation(tx, request.accountId, request.reservationId);
    const amount =
      request.amount ?? (reservation.status === 'held' ? reservation.holding : (reservation.captured ?? 0));
    const debit = () =>
      drawDown(tx, {
        accountId: request.accountId,
        amount,
        businessKey: captureKey(reservation.id),
        kind: 'debit',
        reason: request.reason,
      });
    if (reservation.status === 'captured' && reservation.captured === amount) {
      return { reservation, entry: (await debit()).entry, replayed: true, followUps: false };
    }
    if (reservation.status !== 'held') throw errors.reservationSettled(reservation.id, reservation.status);
    // Past its TTL a hold is over, whether or not its timer has released it yet.
    if (reservation.expiresAt <= (await dbNow(tx)))
      throw errors.reservationSettled(reservation.id, 'expired');
    if (amount > reservation.holding) throw errors.captureExceedsHold(reservation.holding, amount);
    // Free the hold first, so the debit may draw the credits it held.
    await tx`UPDATE credit_balances SET held = held - ${reservation.holding} WHERE account_id = ${request.accountId}`;
    const { entry, followUps } = await debit();
    const [row] = await tx<ReservationRow[]>`
      UPDATE credit_reservations SET status = 'captured', captured = ${amount}, settled_at = now()
      WHERE id = ${reservation.id} RETURNING ${tx.unsafe(COLUMNS)}`;
    return { reservation: row ? toReservation(row) : reservation, entry, replayed: false, followUps };
  });
}

/**
 * Frees a hold: by the client (`released`) or at its TTL (`expired`). A hold already settled is
 * answered as it is, so a timer firing after a capture changes nothing.
 */
export async function releaseReservation(
  sql: Sql,
  request: { accountId: string; reservationId: string; as: 'released' | 'expired' },
): Promise<Reservation> {
  return sql.begin(async (tx) => {
    await lockAccountBalance(tx, request.accountId);
    const reservation = await lockReservation(tx, request.accountId, request.reservationId);
    if (reservation.status !== 'held') return reservation;
    if (request.as === 'expired') {
      const [due] = await tx`SELECT 1 WHERE ${reservation.expiresAt} <= now()`;
      if (!due) return reservation;
    }
    await tx`UPDATE credit_balances SET held = held - ${reservation.holding} WHERE account_id = ${request.accountId}`;
    const [row] = await tx<ReservationRow[]>`
      UPDATE credit_reservations SET status = ${request.as}, settled_at = now()
      WHERE id = ${reservation.id} RETURNING ${tx.unsafe(COLUMNS)}`;
    return row ? toReservation(row) : reservation;
  });
}

/** Holds whose time is up but that nothing released yet (a lost timer, a crash before it started). */
export async function findDueReservations(
  sql: Sql,
  limit: number,
): Promise<Array<{ accountId: string; reservationId: string }>> {
  const rows = await sql<{ account_id: string; id: string }[]>`
    SELECT account_id, id FROM credit_reservations WHERE status = 'held' AND expires_at <= now()
    ORDER BY expires_at LIMIT ${limit}`;
  return rows.map((row) => ({ accountId: row.account_id, reservationId: row.id }));
}
