import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { Router } from 'express';
import type { ApiConfig } from '../../config/env';
import type { Logger } from '../../config/logger';
import type { Sql } from '../../db/client';
import {
  captureReservation,
  findReservation,
  holdCredits,
  releaseReservation,
  type Reservation,
} from '../../credits/reservations';
import {
  RESERVATION_TIMEOUT_WORKFLOW_TYPE,
  reservationWorkflowId,
  type ReservationTimeoutInput,
} from '../../workflows/maintenance/contract';
import { errors, parseOrThrow } from '../errors';
import { accountParams, captureReservationBody, createReservationBody, reservationParams } from '../schemas';
import { requireAccount } from './accounts';
import { requireRole } from '../auth';
import { startBalanceFollowUps } from '../../temporal/follow-ups';

const present = (reservation: Reservation) => ({
  id: reservation.id,
  amount: reservation.amount,
  status: reservation.status,
  captured: reservation.captured,
  expiresAt: reservation.expiresAt.toISOString(),
  createdAt: reservation.createdAt.toISOString(),
});

/**
 * Holds on credits: hold, capture (all or part, into a debit), release. Each hold's TTL is a
 * Temporal timer; the maintenance schedule releases any hold whose timer never started.
 */
export function reservationsRouter(deps: {
  sql: Sql;
  temporal: Client;
  config: ApiConfig;
  logger: Logger;
}): Router {
  const { sql } = deps;
  const router = Router();

  async function startTimer(reservation: Reservation): Promise<void> {
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

  router.post('/v1/accounts/:id/reservations', requireRole('write'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(createReservationBody, req.body);
    await requireAccount(sql, id);
    const { reservation, created } = await holdCredits(sql, { accountId: id, ...body });
    if (reservation.status === 'held') await startTimer(reservation);
    res.status(created ? 201 : 200).json(present(reservation));
  });

  router.get('/v1/accounts/:id/reservations/:reservationId', requireRole('read'), async (req, res) => {
    const { id, reservationId } = parseOrThrow(reservationParams, req.params);
    const reservation = await findReservation(sql, id, reservationId);
    if (!reservation) throw errors.reservationNotFound(reservationId);
    res.json(present(reservation));
  });

  router.post(
    '/v1/accounts/:id/reservations/:reservationId/capture',
    requireRole('write'),
    async (req, res) => {
      const { id, reservationId } = parseOrThrow(reservationParams, req.params);
      const body = parseOrThrow(captureReservationBody, req.body);
      const { reservation, entry } = await captureReservation(sql, {
        accountId: id,
        reservationId,
        reason: body.reason,
        ...(body.amount === undefined ? {} : { amount: body.amount }),
      });
      await startBalanceFollowUps(deps, id);
      res.status(201).json({ ...present(reservation), entryId: entry.id, balance: entry.balanceAfter });
    },
  );

  router.post(
    '/v1/accounts/:id/reservations/:reservationId/release',
    requireRole('write'),
    async (req, res) => {
      const { id, reservationId } = parseOrThrow(reservationParams, req.params);
      const reservation = await releaseReservation(sql, { accountId: id, reservationId, as: 'released' });
      res.json(present(reservation));
    },
  );

  return router;
}
