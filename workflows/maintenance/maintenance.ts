import { patched, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import type { createMaintenanceActivities } from '../../activities/maintenance/maintenance';
import type { createRetentionActivities } from '../../activities/maintenance/retention';
import {
  reservationStatusQuery,
  type MaintenanceInput,
  type MaintenanceResult,
  type ReservationTimeoutInput,
} from './contract';
import { databaseActivityOptions, maintenanceActivityOptions } from '../shared/activity-options';
import { sweepOutbox } from '../email/outbox-sweep';
import { startBalanceFollowUps, sweepBalanceFollowUps } from '../topups/topup';
import { sweepExpiryNotices } from '../notices/expiry-notices';

type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;

const sweep = proxyActivities<MaintenanceActivities>(maintenanceActivityOptions);
const reservations = proxyActivities<MaintenanceActivities>(databaseActivityOptions);
const retention = proxyActivities<ReturnType<typeof createRetentionActivities>>(maintenanceActivityOptions);

/**
 * One run of the maintenance schedule: expire the grants whose time has come (a grant past its
 * expiry is never drawn from, so this only writes the ledger row), release holds whose timer
 * was lost, deliver or fail emails left pending with no workflow to deliver them, start the
 * balance follow-ups nobody started, record top-ups abandoned by their run as failed, tell
 * accounts of credits about to expire, and delete finished outbound events, emails and rejected
 * events past their retention. Each step is idempotent, so overlapping or repeated runs change
 * nothing twice.
 */
export async function maintenanceWorkflow(input: MaintenanceInput = {}): Promise<MaintenanceResult> {
  const expired = await sweep.expireDueGrants();
  const holds = await sweep.releaseDueReservations();
  const emails = await sweepOutbox();
  let followUpsStarted = 0;
  // Patched: a run in flight when this step was added replays without it.
  if (patched('balance-follow-ups')) {
    if (patched(FOLLOW_UPS_BY_ACTIVITY)) {
      followUpsStarted = await sweepBalanceFollowUps(
        input.followUpAccounts ? { accountIds: input.followUpAccounts } : {},
      );
    } else {
      followUpsStarted = await startBalanceFollowUps();
    }
  }
  let expiryNotices = 0;
  // Patched: runs recorded before expiry notices replay without the step.
  if (patched(EXPIRY_NOTICES)) {
    const scope = input.expiryNoticeAccounts ? { accountIds: input.expiryNoticeAccounts } : {};
    expiryNotices = (await sweepExpiryNotices(scope)).notices;
  }
  // Patched: a run in flight when this step was added replays without it.
  const recordsDeleted = patched(RETENTION_SWEEP) ? await retention.deleteExpiredRecords() : undefined;
  return {
    grantsExpired: expired.grants,
    creditsExpired: expired.credits,
    reservationsReleased: holds.released,
    emails,
    followUpsStarted,
    expiryNotices,
    ...(recordsDeleted ? { recordsDeleted } : {}),
  };
}

/** Marks the runs that record the expiry notices now due (workflows/notices/expiry-notices.ts). */
const EXPIRY_NOTICES = 'credit-expiry-notices';

/** Marks the runs that delete outbound events, emails and rejected events past their retention. */
const RETENTION_SWEEP = 'retention-sweep';

/**
 * Marks the runs whose follow-ups are started by one activity, with the client the API uses
 * (concurrently, a workflow round trip for all rather than one each). Runs recorded before it
 * started them as child workflows, one by one (startBalanceFollowUps), and replay so.
 */
const FOLLOW_UPS_BY_ACTIVITY = 'follow-ups-by-activity';

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
