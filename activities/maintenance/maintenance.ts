import { heartbeat, log } from '@temporalio/activity';
import { closeGrant, findDueGrants, findDueReservations, releaseReservation } from '../../credits/index';
import type { ActivityDependencies } from '../dependencies';

const BATCH = 500;

/** What the maintenance activities use: the credit engine's tables and the counters. */
export type MaintenanceActivityDependencies = Pick<ActivityDependencies, 'sql' | 'metrics'>;

/** Expiry of grants and of holds: each is idempotent, so duplicate timers and sweeps are harmless. */
export function createMaintenanceActivities<D extends MaintenanceActivityDependencies>({ sql, metrics }: D) {
  return {
    /** Expires every grant whose time has come, each in its own transaction, exactly once. */
    async expireDueGrants(): Promise<{ grants: number; credits: number }> {
      const tally = { grants: 0, credits: 0 };
      for (const grantId of await findDueGrants(sql, BATCH)) {
        heartbeat(grantId);
        const { entry, closedNow, grant } = await closeGrant(sql, grantId, { as: 'expired' });
        if (!closedNow) continue;
        tally.grants += 1;
        tally.credits += -(entry?.delta ?? 0);
        // closedNow is true for the one call that closed it: a retry or an overlapping run is not.
        if (entry) metrics?.creditsExpired(grant.source, -entry.delta);
        log.info('grant expired', {
          grantId,
          credits: -(entry?.delta ?? 0),
          ledgerEntryId: entry?.id ?? null,
        });
      }
      return tally;
    },

    /** Releases holds whose TTL passed without their timer releasing them. */
    async releaseDueReservations(): Promise<{ released: number }> {
      let released = 0;
      for (const due of await findDueReservations(sql, BATCH)) {
        heartbeat(due.reservationId);
        const reservation = await releaseReservation(sql, { ...due, as: 'expired' });
        if (reservation.status === 'expired') released += 1;
      }
      return { released };
    },

    /** The TTL of one hold: release it unless it was captured or released meanwhile. */
    async expireReservation(input: {
      accountId: string;
      reservationId: string;
    }): Promise<{ status: string }> {
      const reservation = await releaseReservation(sql, { ...input, as: 'expired' });
      log.info('reservation TTL reached', { reservationId: input.reservationId, status: reservation.status });
      return { status: reservation.status };
    },
  };
}
