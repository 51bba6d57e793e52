import { z } from 'zod';
import type { ZodOpenApiOperationObject } from 'zod-openapi';
import type { ApiRole } from '../../config/env';
import { accountParams, type OpenApiBuilders } from '../schemas';

/** Schemas and OpenAPI operations of the low-balance and automatic top-up settings. */

const credits = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const lowBalanceBody = z
  .strictObject({
    threshold: credits.meta({
      description: 'Notify once when the available balance goes below this many credits.',
      example: 100,
    }),
  })
  .meta({ id: 'LowBalanceSettings' });

export const lowBalanceResponse = z
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

export const autoTopupBody = z
  .strictObject({
    enabled: z.boolean(),
    threshold: credits.meta({
      description: 'Top up when the available balance goes below this.',
      example: 200,
    }),
    packId: z
      .string()
      .regex(/^[\x21-\x7e]{1,64}$/, '1 to 64 visible ASCII characters')
      .optional()
      .meta({ description: 'The pack to buy.', example: 'growth' }),
    credits: credits.optional().meta({ description: 'A custom number of credits, instead of a pack.' }),
    monthlyCapCents: z.number().int().positive().max(99_999_999).meta({
      description: 'At most this much is charged by top-ups in a calendar month (UTC).',
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

export const autoTopupResponse = z
  .object({
    accountId: z.string(),
    enabled: z.boolean(),
    threshold: z.number().int(),
    packId: z.string().nullable(),
    credits: z.number().int(),
    amountCents: z.number().int(),
    currency: z.string(),
    monthlyCapCents: z.number().int(),
    usedThisMonthCents: z.number().int(),
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

export const TOPUP_ROLES: Record<string, Record<string, ApiRole>> = {
  '/v1/accounts/{id}/low-balance': { get: 'read', put: 'write', delete: 'write' },
  '/v1/accounts/{id}/auto-topup': { get: 'read', put: 'write' },
};

export function topupOperations({
  json,
  responses,
  authFailures,
}: OpenApiBuilders): Record<string, Record<string, ZodOpenApiOperationObject>> {
  const notFound = { '404': '`account_not_found`.' };
  const invalid = { '400': '`invalid_request`.' };
  return {
    '/v1/accounts/{id}/low-balance': {
      get: {
        summary: 'Read the low-balance threshold',
        requestParams: { path: accountParams },
        responses: responses(
          { '200': ['The threshold and whether it is armed.', lowBalanceResponse] },
          { ...authFailures, '404': '`account_not_found`, or no threshold is set (`low_balance_not_set`).' },
        ),
      },
      put: {
        summary: 'Set the low-balance threshold',
        description:
          'When a debit or revocation takes the available balance from at or above the threshold to below ' +
          'it, one email and one `balance.low` event are sent; it re-arms once the balance is back at or above.',
        requestParams: { path: accountParams },
        requestBody: json(lowBalanceBody),
        responses: responses(
          { '200': ['Saved.', lowBalanceResponse] },
          { ...invalid, ...authFailures, ...notFound },
        ),
      },
      delete: {
        summary: 'Stop low-balance notices',
        requestParams: { path: accountParams },
        responses: {
          '204': { description: 'Removed (or there was none).' },
          ...responses({}, { ...authFailures, ...notFound }),
        },
      },
    },
    '/v1/accounts/{id}/auto-topup': {
      get: {
        summary: 'Read the automatic top-up settings and recent top-ups',
        requestParams: { path: accountParams },
        responses: responses(
          { '200': ['The settings, what the month used, and the last top-ups.', autoTopupResponse] },
          { ...authFailures, '404': '`account_not_found`, or none set (`auto_topup_not_set`).' },
        ),
      },
      put: {
        summary: 'Set automatic top-up',
        description:
          'Below the threshold, the card saved at checkout (`savePaymentMethod`) is charged off-session for the ' +
          'pack or credits, never beyond the monthly cap. A failure emails a link to pay on-session and sends ' +
          '`topup.failed`; after `maxConsecutiveFailures` in a row it turns itself off. Saving clears the count.',
        requestParams: { path: accountParams },
        requestBody: json(autoTopupBody),
        responses: responses(
          { '200': ['Saved.', autoTopupResponse] },
          { ...invalid, ...authFailures, '404': '`account_not_found` or `pack_not_found`.' },
        ),
      },
    },
  };
}
