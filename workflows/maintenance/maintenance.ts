import { patched, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import type { createMaintenanceActivities } from '../../activities/maintenance/maintenance';
import { reservationStatusQuery, type MaintenanceResult, type ReservationTimeoutInput } from './contract';
import { databaseActivityOptions, maintenanceActivityOptions } from '../shared/activity-options';
import { sweepOutbox } from '../email/outbox-sweep';
import { startBalanceFollowUps } from '../topups/topup';

type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;

const sweep = proxyActivities<MaintenanceActivities>(maintenanceActivityOptions);
const reservations = proxyActivities<MaintenanceActivities>(databaseActivityOptions);

/**
 * One run of the maintenance schedule: expire the grants whose time has come (a grant past its
 * expiry is never drawn from, so this only writes the ledger row), release holds whose timer
 * was lost, and deliver or fail emails left pending with no workflow to deliver them. Each step
 * is idempotent, so overlapping or repeated runs change nothing twice.
 */
export async function maintenanceWorkflow(): Promise<MaintenanceResult> {
  const expired = await sweep.expireDueGrants();
  const holds = await sweep.releaseDueReservations();
  const emails = await sweepOutbox();
  // Patched: a run in flight when this step was added replays without it.
  if (patched('balance-follow-ups')) await startBalanceFollowUps();
  return {
    grantsExpired: expired.grants,
    creditsExpired: expired.credits,
    reservationsReleased: holds.released,
    emails,
  };
}

/** The TTL of one hold: a durable timer, then a release that a capture or release made moot. */
export async function reservationTimeoutWorkflow(
  input: ReservationTimeoutInput,
): Promise<{ status: string }> {
  let state: { stage: 'waiting' | 'settled'; status: string | null } = { stage: 'waiting', status: null };
  setHandler(reservationStatusQuery, () => state);
  const wait = input.expiresAtMs - Date.now();
  if (wait > 0) await sleep(wait);
  const { status } = await reservations.expireReservation({
    accountId: input.accountId,
    reservationId: input.reservationId,
  });
  state = { stage: 'settled', status };
  return { status };
}
