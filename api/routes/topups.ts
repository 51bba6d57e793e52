import { z } from 'zod';
import type { ApiConfig } from '../../config/env';
import {
  deleteLowBalanceSettings,
  findLowBalanceSettings,
  saveLowBalanceSettings,
  type LowBalanceSettings,
} from '../../db/topups/low-balance';
import { priceSale } from '../../db/catalog/packs';
import type { Sql } from '../../db/client';
import {
  findStripeCustomer,
  findTopupSettings,
  listTopups,
  saveTopupSettings,
  type TopupSettings,
} from '../../db/topups/topups';
import { BillingError, type ErrorCode } from '../../domain/errors';
import { errors } from '../errors';
import { accountParams, packId, positiveCount } from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { requireAccount } from './accounts';

/** An account's low-balance threshold and its automatic top-up settings, with recent top-ups. */

// --- schemas ------------------------------------------------------------------------------

const lowBalanceBody = z
  .strictObject({
    threshold: positiveCount.meta({
      description: 'Notify once when the available balance goes below this many credits.',
      example: 100,
    }),
  })
  .meta({ id: 'LowBalanceSettings' });

const lowBalanceResponse = z
  .object({
    accountId: z.string(),
    threshold: z.number().int(),
    armed: z.boolean().meta({
      description: 'True while the balance is at or above the threshold: the next crossing notifies.',
    }),
    notices: z.number().int().meta({ description: 'Notices sent so far.' }),
    lastNoticeAt: z.string().nullable(),
  })
  .meta({ id: 'LowBalance' });

const autoTopupBody = z
  .strictObject({
    enabled: z.boolean(),
    threshold: positiveCount.meta({
      description: 'Top up when the available balance goes below this.',
      example: 200,
    }),
    packId: packId.optional().meta({ description: 'The pack to buy.', example: 'growth' }),
    credits: positiveCount.optional().meta({ description: 'A custom number of credits, instead of a pack.' }),
    monthlyCapCents: z
      .number()
      .int()
      .positive()
      .max(99_999_999)
      .meta({
        description:
          'At most this much is charged by top-ups in a calendar month (UTC), in the currency of the pack or ' +
          'custom credits. Top-ups charged in another currency do not count: after a change of currency the ' +
          'month counts afresh in the new one.',
        example: 20000,
      }),
    maxConsecutiveFailures: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(3)
      .meta({ description: 'Failed top-ups in a row after which automatic top-up turns itself off.' }),
  })
  .refine((body) => (body.packId === undefined) !== (body.credits === undefined), {
    message: 'give exactly one of packId and credits',
    path: ['packId'],
  })
  .meta({ id: 'AutoTopupSettings' });

const topupSummary = z.object({
  id: z.string().meta({ example: 'topup_42' }),
  status: z.enum(['pending', 'charging', 'succeeded', 'failed', 'refused']),
  credits: z.number().int(),
  amountCents: z.number().int(),
  currency: z.string(),
  paymentIntentId: z.string().nullable(),
  failureCode: z.string().nullable(),
  recoveryUrl: z
    .string()
    .nullable()
    .meta({ description: 'Where the customer pays a failed top-up on-session.' }),
  createdAt: z.string(),
});

const autoTopupResponse = z
  .object({
    accountId: z.string(),
    enabled: z.boolean(),
    threshold: z.number().int(),
    packId: z.string().nullable(),
    credits: z.number().int(),
    amountCents: z.number().int(),
    currency: z.string(),
    monthlyCapCents: z.number().int(),
    usedThisMonthCents: z
      .number()
      .int()
      .meta({
        description:
          "What the month's top-ups in the settings' currency charged or may have charged: a failure whose " +
          'charge outcome is unknown (`stripe_unavailable`, `grant_failed`) counts until Stripe reports it declined.',
      }),
    maxConsecutiveFailures: z.number().int(),
    consecutiveFailures: z.number().int(),
    disabledReason: z.string().nullable().meta({ description: 'Why automatic top-up turned itself off.' }),
    disabledAt: z.string().nullable(),
    lastSkippedReason: z.string().nullable(),
    savedCard: z
      .boolean()
      .meta({ description: 'Whether a Stripe customer is known to charge (card saved at checkout).' }),
    recentTopups: z.array(topupSummary),
  })
  .meta({ id: 'AutoTopup' });

// --- operations ---------------------------------------------------------------------------

const notSet = (code: ErrorCode, what: string) =>
  new BillingError(code, `No ${what} is set for this account.`);

async function readLowBalance(sql: Sql, id: string): Promise<LowBalanceSettings> {
  await requireAccount(sql, id);
  const settings = await findLowBalanceSettings(sql, id);
  if (!settings) throw notSet('low_balance_not_set', 'low-balance threshold');
  return settings;
}

async function setLowBalance(sql: Sql, id: string, threshold: number): Promise<LowBalanceSettings> {
  await requireAccount(sql, id);
  return saveLowBalanceSettings(sql, id, threshold);
}

async function stopLowBalance(sql: Sql, id: string): Promise<void> {
  await requireAccount(sql, id);
  await deleteLowBalanceSettings(sql, id);
}

/** The settings with what the month used, the last ten top-ups and whether a card is saved. */
async function autoTopupStanding(sql: Sql, settings: TopupSettings) {
  const [recent, customer] = await Promise.all([
    listTopups(sql, settings.accountId, 10),
    findStripeCustomer(sql, settings.accountId),
  ]);
  return { settings, recent, savedCard: customer !== null };
}

async function readAutoTopup(sql: Sql, id: string) {
  await requireAccount(sql, id);
  const settings = await findTopupSettings(sql, id);
  if (!settings) throw notSet('auto_topup_not_set', 'automatic top-up');
  return autoTopupStanding(sql, settings);
}

/** Saves automatic top-up, priced by the server: the catalog's for a pack, the unit price otherwise. */
async function setAutoTopup(
  { sql, config }: { sql: Sql; config: Pick<ApiConfig, 'customCredits'> },
  id: string,
  request: z.output<typeof autoTopupBody>,
) {
  await requireAccount(sql, id);
  const { name: _name, ...sale } = await priceSale(sql, request, config.customCredits);
  if (request.monthlyCapCents < sale.amountCents) {
    throw errors.invalidValue('monthlyCapCents', `must allow at least one top-up (${sale.amountCents})`);
  }
  const saved = await saveTopupSettings(sql, id, {
    enabled: request.enabled,
    threshold: request.threshold,
    monthlyCapCents: request.monthlyCapCents,
    maxConsecutiveFailures: request.maxConsecutiveFailures,
    ...sale,
  });
  return autoTopupStanding(sql, saved);
}

// --- presenting ---------------------------------------------------------------------------

const presentLowBalance = (settings: LowBalanceSettings) => ({
  accountId: settings.accountId,
  threshold: settings.threshold,
  armed: settings.armed,
  notices: settings.notices,
  lastNoticeAt: settings.lastNoticeAt?.toISOString() ?? null,
});

const presentAutoTopup = ({
  settings,
  recent,
  savedCard,
}: Awaited<ReturnType<typeof autoTopupStanding>>) => ({
  accountId: settings.accountId,
  enabled: settings.enabled,
  threshold: settings.threshold,
  packId: settings.packId,
  credits: settings.credits,
  amountCents: settings.amountCents,
  currency: settings.currency,
  monthlyCapCents: settings.monthlyCapCents,
  usedThisMonthCents: settings.usedThisMonthCents,
  maxConsecutiveFailures: settings.maxConsecutiveFailures,
  consecutiveFailures: settings.consecutiveFailures,
  disabledReason: settings.disabledReason,
  disabledAt: settings.disabledAt?.toISOString() ?? null,
  lastSkippedReason: settings.lastSkippedReason,
  savedCard,
  recentTopups: recent.map((topup) => ({
    id: topup.id,
    status: topup.status,
    credits: topup.credits,
    amountCents: topup.amountCents,
    currency: topup.currency,
    paymentIntentId: topup.paymentIntentId,
    failureCode: topup.failureCode,
    recoveryUrl: topup.recoveryUrl,
    createdAt: topup.createdAt.toISOString(),
  })),
});

// --- routes -------------------------------------------------------------------------------

const accountNotFound = { 404: '`account_not_found`.' };

export const topupRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/low-balance',
    role: 'read',
    summary: 'Read the low-balance threshold',
    params: accountParams,
    responses: { 200: ['The threshold and whether it is armed.', lowBalanceResponse] },
    errors: { 404: '`account_not_found`, or no threshold is set (`low_balance_not_set`).' },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: presentLowBalance(await readLowBalance(deps.sql, params.id)),
    }),
  }),

  defineRoute({
    method: 'put',
    path: '/v1/accounts/:id/low-balance',
    role: 'write',
    summary: 'Set the low-balance threshold',
    description:
      'When a debit or revocation takes the available balance from at or above the threshold to below ' +
      'it, one email and one `balance.low` event are sent; it re-arms once the balance is back at or above.',
    params: accountParams,
    body: lowBalanceBody,
    responses: { 200: ['Saved.', lowBalanceResponse] },
    errors: { 400: '`invalid_request`.', ...accountNotFound },
    handler: async ({ params, body, deps }) => ({
      status: 200,
      body: presentLowBalance(await setLowBalance(deps.sql, params.id, body.threshold)),
    }),
  }),

  defineRoute({
    method: 'delete',
    path: '/v1/accounts/:id/low-balance',
    role: 'write',
    summary: 'Stop low-balance notices',
    params: accountParams,
    responses: { 204: 'Removed (or there was none).' },
    errors: accountNotFound,
    handler: async ({ params, deps }) => {
      await stopLowBalance(deps.sql, params.id);
      return { status: 204 };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/auto-topup',
    role: 'read',
    summary: 'Read the automatic top-up settings and recent top-ups',
    params: accountParams,
    responses: { 200: ['The settings, what the month used, and the last top-ups.', autoTopupResponse] },
    errors: { 404: '`account_not_found`, or none set (`auto_topup_not_set`).' },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: presentAutoTopup(await readAutoTopup(deps.sql, params.id)),
    }),
  }),

  defineRoute({
    method: 'put',
    path: '/v1/accounts/:id/auto-topup',
    role: 'write',
    summary: 'Set automatic top-up',
    description:
      'Below the threshold, the card saved at checkout (`savePaymentMethod`) is charged off-session for the ' +
      'pack or credits, never beyond the monthly cap. A failure emails a link to pay on-session and sends ' +
      '`topup.failed`; after `maxConsecutiveFailures` in a row it turns itself off. Saving clears the count.',
    params: accountParams,
    body: autoTopupBody,
    responses: { 200: ['Saved.', autoTopupResponse] },
    errors: { 400: '`invalid_request`.', 404: '`account_not_found` or `pack_not_found`.' },
    handler: async ({ params, body, deps }) => ({
      status: 200,
      body: presentAutoTopup(await setAutoTopup(deps, params.id, body)),
    }),
  }),
];
