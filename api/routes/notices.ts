import { z } from 'zod';
import type { Sql } from '../../db/client';
import {
  findNotificationSettings,
  saveNotificationSettings,
  type NotificationSettings,
} from '../../db/notices/settings';
import { accountId, accountParams } from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { requireAccount } from './accounts';

/** Which notices an account's owner is emailed; the clients' webhook events are sent regardless. */

// --- schemas ------------------------------------------------------------------------------

const expiryEmails = z.boolean().meta({
  description:
    'Email the account before credits expire (CREDIT_EXPIRY_NOTICE ahead, once per grant). ' +
    'The `credits.expiring` event is sent either way. Default true.',
  example: false,
});

const notificationsBody = z.strictObject({ expiryEmails }).meta({ id: 'NotificationSettingsUpdate' });

const notificationsResponse = z.object({ accountId, expiryEmails }).meta({ id: 'NotificationSettings' });

// --- operations ---------------------------------------------------------------------------

async function readNotifications(sql: Sql, id: string): Promise<NotificationSettings> {
  await requireAccount(sql, id);
  return findNotificationSettings(sql, id);
}

async function setNotifications(
  sql: Sql,
  id: string,
  settings: z.output<typeof notificationsBody>,
): Promise<NotificationSettings> {
  await requireAccount(sql, id);
  return saveNotificationSettings(sql, id, settings);
}

// --- presenting ---------------------------------------------------------------------------

const present = (settings: NotificationSettings) => ({
  accountId: settings.accountId,
  expiryEmails: settings.expiryEmails,
});

// --- routes -------------------------------------------------------------------------------

export const noticeRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/notifications',
    role: 'read',
    summary: 'Read which notices the account is emailed',
    params: accountParams,
    responses: { 200: ['The settings (the defaults until saved).', notificationsResponse] },
    errors: { 404: '`account_not_found`.' },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: present(await readNotifications(deps.sql, params.id)),
    }),
  }),

  defineRoute({
    method: 'put',
    path: '/v1/accounts/:id/notifications',
    role: 'write',
    summary: 'Choose which notices the account is emailed',
    description:
      'Turning `expiryEmails` off stops the emails sent before credits expire, from the next notice ' +
      'on; `credits.expiring` events still reach the webhook endpoints.',
    params: accountParams,
    body: notificationsBody,
    responses: { 200: ['Saved.', notificationsResponse] },
    errors: { 400: '`invalid_request`.', 404: '`account_not_found`.' },
    handler: async ({ params, body, deps }) => ({
      status: 200,
      body: present(await setNotifications(deps.sql, params.id, body)),
    }),
  }),
];
