import { defineQuery } from '@temporalio/workflow';

/** What the notice sweep (which starts them) and the notice workflows agree on. */

export const CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE = 'creditExpiryNoticeWorkflow';

/** Input of the workflow that delivers one expiry notice's email, already queued in the outbox. */
export interface CreditExpiryNoticeInput {
  accountId: string;
  grantId: number;
  /** The email's outbox key, which is also the workflow's ID: one run, one email, per grant. */
  emailKey: string;
  /** When the grant expires, in epoch milliseconds: the email is not retried past it. */
  expiresAtMs: number;
}

export type CreditExpiryNoticeStage = 'sending' | 'sent' | 'failed';

export interface CreditExpiryNoticeStatus {
  stage: CreditExpiryNoticeStage;
  accountId: string | null;
  grantId: number;
  emailKey: string;
}

export const creditExpiryNoticeStatusQuery = defineQuery<CreditExpiryNoticeStatus>('status');

/**
 * How long a notice's email keeps being retried: as long as a receipt's, but never past the
 * expiry it announces (then it is recorded as failed), and at least a few attempts' worth.
 */
export const EXPIRY_NOTICE_EMAIL_DEADLINE_MS = 3 * 24 * 3600_000;
export const EXPIRY_NOTICE_EMAIL_MIN_DEADLINE_MS = 60_000;

/** Which accounts' notices a sweep records: all of them, or some (an operator's or a test's run). */
export interface ExpiryNoticeSweepInput {
  accountIds?: string[];
}

/** What one sweep recorded: notices, and how many of them queued an email. */
export interface ExpiryNoticeSweepResult {
  notices: number;
  emails: number;
}
