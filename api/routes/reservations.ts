import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { z } from 'zod';
import {
  captureReservation,
  findReservation,
  holdCredits,
  releaseReservation,
  type Reservation,
} from '../../credits/index';
import { startBalanceFollowUps } from '../../temporal/follow-ups';
import {
  RESERVATION_TIMEOUT_WORKFLOW_TYPE,
  reservationWorkflowId,
  type ReservationTimeoutInput,
} from '../../workflows/maintenance/contract';
import type { AppDependencies } from '../dependencies';
import { errors } from '../errors';
import { accountId, accountParams, humanText, idempotencyKey, positiveCount } from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { requireAccount } from './accounts';

/**
 * Holds on credits: hold, capture (all or part, into a debit), release. Each hold's TTL is a
 * Temporal timer; the maintenance schedule releases any hold whose timer never started.
 */

// --- schemas ------------------------------------------------------------------------------

const reservationParams = z.object({
  id: accountId,
  reservationId: z.string().regex(/^rsv_[0-9a-f]{32}$/, 'a reservation ID (rsv_…)'),
});

const createReservationBody = z
  .strictObject({
    amount: positiveCount.meta({ description: 'Credits to hold.', example: 50 }),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .meta({ description: 'Released by itself after this long unless captured.', example: 600 }),
    idempotencyKey,
  })
  .meta({ id: 'CreateReservation' });

const captureReservationBody = z
  .strictObject({
    amount: positiveCount
      .optional()
      .meta({ description: 'Credits to spend (at most what the hold holds); all it holds by default.' }),
    reason: humanText(500).meta({ example: 'video render' }),
  })
  .meta({ id: 'CaptureReservation' });

export const reservationResponse = z
  .object({
    id: z.string(),
    amount: z.number().int().meta({ description: 'Credits the hold was made for.' }),
    status: z.enum(['held', 'captured', 'released', 'expired']),
    held: z
      .number()
      .int()
      .meta({ description: 'What it holds now: `amount − shrunk` while held, 0 once settled.' }),
    captured: z.number().int().nullable(),
    shrunk: z.number().int().meta({
      description:
        'Credits it no longer holds because the credits behind it went (expired, voided, taken back, or spent as debt); the newest holds shrink first.',
    }),
    shrinkReason: z.string().nullable(),
    expiresAt: z.iso.datetime(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Reservation' });

const reservationCaptureResponse = reservationResponse
  .extend({ entryId: z.number().int(), balance: z.number().int() })
  .meta({ id: 'ReservationCapture' });

// --- operations ---------------------------------------------------------------------------

/** Starts the hold's TTL timer; a hold whose timer does not start is released by the sweep. */
async function startTimer(deps: AppDependencies, reservation: Reservation): Promise<void> {
  const input: ReservationTimeoutInput = {
    accountId: reservation.accountId,
    reservationId: reservation.id,
    expiresAtMs: reservation.expiresAt.getTime(),
  };
  try {
    await deps.temporal.workflow.start(RESERVATION_TIMEOUT_WORKFLOW_TYPE, {
      workflowId: reservationWorkflowId(reservation.id),
      taskQueue: deps.config.temporal.taskQueue,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return;
    // The hold stands; the maintenance sweep releases it at its TTL instead.
    deps.logger.warn({ err: error, reservationId: reservation.id }, 'reservation timer not started');
  }
}

/** Holds credits once per idempotency key, and starts the hold's timer. */
export async function reserveCredits(
  deps: AppDependencies,
  id: string,
  request: { amount: number; ttlSeconds: number; idempotencyKey: string },
): Promise<{ reservation: Reservation; created: boolean }> {
  await requireAccount(deps.sql, id);
  const held = await holdCredits(deps.sql, { accountId: id, ...request });
  if (held.reservation.status === 'held') await startTimer(deps, held.reservation);
  return held;
}

async function readReservation(deps: AppDependencies, id: string, reservationId: string) {
  const reservation = await findReservation(deps.sql, id, reservationId);
  if (!reservation) throw errors.reservationNotFound(reservationId);
  return reservation;
}

/** Captures the hold (all or part) as a debit, then starts what the new balance asks for. */
async function captureHold(
  deps: AppDependencies,
  ids: { id: string; reservationId: string },
  capture: { amount?: number | undefined; reason: string },
) {
  const captured = await captureReservation(deps.sql, {
    accountId: ids.id,
    reservationId: ids.reservationId,
    reason: capture.reason,
    ...(capture.amount === undefined ? {} : { amount: capture.amount }),
  });
  if (captured.followUps) await startBalanceFollowUps(deps, ids.id);
  return captured;
}

// --- presenting ---------------------------------------------------------------------------

// A hold as it was made: what a replay of its creation answers, whatever became of it since.
const asMade = (reservation: Reservation): Reservation => ({
  ...reservation,
  status: 'held',
  captured: null,
  shrunk: 0,
  shrinkReason: null,
  holding: reservation.amount,
  settledAt: null,
});

export const presentReservation = (reservation: Reservation) => ({
  id: reservation.id,
  amount: reservation.amount,
  status: reservation.status,
  held: reservation.holding,
  captured: reservation.captured,
  shrunk: reservation.shrunk,
  shrinkReason: reservation.shrinkReason,
  expiresAt: reservation.expiresAt.toISOString(),
  createdAt: reservation.createdAt.toISOString(),
});

// --- routes -------------------------------------------------------------------------------

export const reservationRoutes = [
  defineRoute({
    method: 'post',
    path: '/v1/accounts/:id/reservations',
    role: 'write',
    summary: 'Hold credits until captured, released, or the TTL passes',
    replays: 'the same `idempotencyKey` with the same amount and TTL',
    params: accountParams,
    body: createReservationBody,
    responses: { 201: ['Held. A replay answers the hold as it was made.', reservationResponse] },
    errors: {
      400: '`invalid_request`.',
      402: 'Not enough available credits (`insufficient_credits`).',
      404: '`account_not_found`.',
      409:
        'The key was used with another amount or TTL (`idempotency_key_reused`); `details` tell its first use: ' +
        '`firstUsedAt`, `reservationId`, `amount`, `ttlSeconds`.',
    },
    handler: async ({ params, body, deps }) => {
      const { reservation, created } = await reserveCredits(deps, params.id, body);
      return {
        status: 201,
        body: presentReservation(created ? reservation : asMade(reservation)),
        replayed: !created,
      };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/reservations/:reservationId',
    role: 'read',
    summary: 'Read a reservation',
    params: reservationParams,
    responses: { 200: ['The reservation.', reservationResponse] },
    errors: { 404: '`reservation_not_found`.' },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: presentReservation(await readReservation(deps, params.id, params.reservationId)),
    }),
  }),

  defineRoute({
    method: 'post',
    path: '/v1/accounts/:id/reservations/:reservationId/capture',
    role: 'write',
    summary: 'Capture a hold, all or part, as a debit drawn from grants',
    replays: 'the same reservation captured again with the same amount',
    params: reservationParams,
    body: captureReservationBody,
    responses: {
      201: ['Captured. A replay answers the original capture.', reservationCaptureResponse],
    },
    errors: {
      400: '`invalid_request`.',
      404: '`reservation_not_found`.',
      409: 'Released, expired or captured otherwise (`reservation_settled`).',
      422: 'More than the hold (`capture_exceeds_hold`).',
    },
    handler: async ({ params, body, deps }) => {
      const { reservation, entry, replayed } = await captureHold(deps, params, body);
      return {
        status: 201,
        body: { ...presentReservation(reservation), entryId: entry.id, balance: entry.balanceAfter },
        replayed,
      };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/accounts/:id/reservations/:reservationId/release',
    role: 'write',
    summary: 'Release a hold (a settled one is answered as it is)',
    params: reservationParams,
    responses: { 200: ['The reservation.', reservationResponse] },
    errors: { 404: '`reservation_not_found`.' },
    handler: async ({ params, deps }) => {
      const { id, reservationId } = params;
      const reservation = await releaseReservation(deps.sql, {
        accountId: id,
        reservationId,
        as: 'released',
      });
      return { status: 200, body: presentReservation(reservation) };
    },
  }),
];
