import { proxyActivities } from '@temporalio/workflow';
import type { createNoticeActivities } from '../../activities/notices/expiry-notices';
import {
  creditExpiryNoticeStatusQuery,
  EXPIRY_NOTICE_EMAIL_DEADLINE_MS,
  EXPIRY_NOTICE_EMAIL_MIN_DEADLINE_MS,
  type CreditExpiryNoticeInput,
  type CreditExpiryNoticeStage,
  type CreditExpiryNoticeStatus,
  type ExpiryNoticeSweepInput,
  type ExpiryNoticeSweepResult,
} from './contract';
import { deliverEmail } from '../email/delivery';
import { maintenanceActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';

type NoticeActivities = ReturnType<typeof createNoticeActivities>;

const sweeps = proxyActivities<NoticeActivities>(maintenanceActivityOptions);

/**
 * The expiry-notice step of a maintenance run: one activity records the notices now due (of the
 * given accounts, or all) and starts the delivery of their emails.
 */
export function sweepExpiryNotices(input: ExpiryNoticeSweepInput): Promise<ExpiryNoticeSweepResult> {
  return sweeps.sendExpiryNotices(input);
}

/**
 * Delivers one expiry notice's email, queued in the outbox with the notice; its ID is the email's
 * key. Retried until the expiry it announces (at most as long as a receipt), then recorded as
 * failed: a notice that arrives after its credits expired would only mislead.
 */
export async function creditExpiryNoticeWorkflow(
  input: CreditExpiryNoticeInput,
): Promise<{ stage: Exclude<CreditExpiryNoticeStage, 'sending'> }> {
  const status: CreditExpiryNoticeStatus = {
    stage: 'sending',
    accountId: input.accountId,
    grantId: input.grantId,
    emailKey: input.emailKey,
  };
  const stage = trackStage(status, creditExpiryNoticeStatusQuery);
  const untilExpiry = input.expiresAtMs - Date.now();
  const deadlineMs = Math.max(
    EXPIRY_NOTICE_EMAIL_MIN_DEADLINE_MS,
    Math.min(EXPIRY_NOTICE_EMAIL_DEADLINE_MS, untilExpiry),
  );
  const outcome = await deliverEmail(input.emailKey, `${Math.ceil(deadlineMs / 1000)} seconds`);
  stage.enter(outcome);
  return { stage: outcome };
}
