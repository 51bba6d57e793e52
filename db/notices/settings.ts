import type { Queryable, Sql } from '../client';

/**
 * What an account's owner asked to be emailed about. An account without a row has the defaults
 * (every email on). The notices that read a setting read it in the transaction that queues the
 * email, so a change applies from the next notice on.
 */

export interface NotificationSettings {
  accountId: string;
  /** Whether credits about to expire are announced by email (the `credits.expiring` event always is). */
  expiryEmails: boolean;
}

const DEFAULTS = { expiryEmails: true } as const;

export async function findNotificationSettings(
  sql: Queryable,
  accountId: string,
): Promise<NotificationSettings> {
  const [row] = await sql<{ expiry_emails: boolean }[]>`
    SELECT expiry_emails FROM notification_settings WHERE account_id = ${accountId}`;
  return { accountId, expiryEmails: row?.expiry_emails ?? DEFAULTS.expiryEmails };
}

export async function saveNotificationSettings(
  sql: Sql,
  accountId: string,
  settings: Omit<NotificationSettings, 'accountId'>,
): Promise<NotificationSettings> {
  const [row] = await sql<{ expiry_emails: boolean }[]>`
    INSERT INTO notification_settings (account_id, expiry_emails)
    VALUES (${accountId}, ${settings.expiryEmails})
    ON CONFLICT (account_id) DO UPDATE SET expiry_emails = EXCLUDED.expiry_emails, updated_at = now()
    RETURNING expiry_emails`;
  if (!row) throw new Error(`notification settings of ${accountId} were not saved`);
  return { accountId, expiryEmails: row.expiry_emails };
}
