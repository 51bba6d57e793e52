import { proxyActivities } from '@temporalio/workflow';
import type { createEmailActivities } from '../../activities/email/email';
import { maintenanceActivityOptions } from '../shared/activity-options';

type EmailActivities = ReturnType<typeof createEmailActivities>;

const outbox = proxyActivities<EmailActivities>(maintenanceActivityOptions);

/**
 * One sweep of the outbox, a step of each maintenance run: emails left pending with no workflow
 * to deliver them are delivered, or recorded as failed once past the give-up age.
 */
export function sweepOutbox(): ReturnType<EmailActivities['sweepOutbox']> {
  return outbox.sweepOutbox();
}
