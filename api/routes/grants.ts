import { z } from 'zod';
import {
  accountScopedKey,
  closeGrantIn,
  createGrant,
  findGrant,
  grantAsCreated,
  listGrants,
  summarizeCredits,
  type Grant,
} from '../../credits/index';
import { grantSubject, recordAudit } from '../../db/audit/audit-log';
import type { Sql } from '../../db/client';
import { DEFAULT_PRIORITY } from '../../domain/credit-grant-rules';
import { decodeCursor, pageOf } from '../cursors';
import { errors } from '../errors';
import {
  accountId,
  accountParams,
  humanText,
  idempotencyKey,
  pageQuery,
  positiveCount,
} from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { requireAccount } from './accounts';

// --- schemas ------------------------------------------------------------------------------

const grantParams = z.object({
  id: accountId,
  grantId: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});

const createGrantBody = z
  .strictObject({
    amount: positiveCount.meta({ description: 'Credits to grant.', example: 500 }),
    category: z
      .enum(['paid', 'promotional'])
      .default('promotional')
      .meta({ description: 'Promotional credits are reported apart and, by default, spent first.' }),
    priority: z.number().int().min(0).max(1000).optional().meta({
      description: 'Lower is spent first. Defaults: promotional 10, paid 100.',
    }),
    expiresAt: z.iso.datetime({ offset: true }).optional().meta({
      description: 'When the unused rest expires; none means never.',
      example: '2027-01-31T00:00:00Z',
    }),
    reason: humanText(500).meta({ example: 'launch promotion' }),
    idempotencyKey,
  })
  .meta({ id: 'CreateGrant' });

type GrantRequest = z.output<typeof createGrantBody>;

const voidGrantBody = z
  .strictObject({ reason: humanText(500).meta({ example: 'granted by mistake' }) })
  .meta({ id: 'VoidGrant' });

const grantResponse = z
  .object({
    id: z.number().int(),
    source: z.enum(['purchase', 'subscription', 'promotional', 'manual', 'migration', 'overdraft']),
    category: z.enum(['paid', 'promotional']),
    priority: z.number().int(),
    amount: z.number().int(),
    remaining: z.number().int(),
    status: z.enum(['live', 'expired', 'voided']).meta({
      description: '`live` until it expires or is voided (a live grant past `expiresAt` is no longer spent).',
    }),
    effectiveAt: z.iso.datetime(),
    expiresAt: z.iso.datetime().nullable(),
    reference: z
      .string()
      .meta({ description: 'The business key that created it (session, invoice, request).' }),
    reason: z.string().nullable(),
    createdBy: z.string().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Grant' });

const grantPageResponse = z
  .object({ grants: z.array(grantResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'GrantPage' });

// --- presenting (the audit log keeps grants as the API shows them) --------------------------

const presentGrant = (grant: Grant) => ({
  id: grant.id,
  source: grant.source,
  category: grant.category,
  priority: grant.priority,
  amount: grant.amount,
  remaining: grant.remaining,
  status: grant.closedReason ?? 'live',
  effectiveAt: grant.effectiveAt.toISOString(),
  expiresAt: grant.expiresAt?.toISOString() ?? null,
  reference: grant.businessKey,
  reason: grant.reason,
  createdBy: grant.createdBy,
  createdAt: grant.createdAt.toISOString(),
});

// --- operations ---------------------------------------------------------------------------

/** One page of the account's grants, newest first. */
async function grantPage(sql: Sql, id: string, page: { limit: number; cursor?: string | undefined }) {
  await requireAccount(sql, id);
  const rows = await listGrants(sql, id, { limit: page.limit + 1, beforeId: decodeCursor(page.cursor) });
  return pageOf(rows, page.limit);
}

/**
 * A promotional or manual grant, once per idempotency key, recorded in the audit log in the
 * same transaction as the credits it adds; `createdBy` is the API key's name. A replay answers
 * the grant it made; the same key with other parameters is a conflict.
 */
async function grantCredits(
  sql: Sql,
  id: string,
  request: GrantRequest,
  createdBy: string,
): Promise<{ grant: Grant; applied: boolean }> {
  await requireAccount(sql, id);
  const expiresAt = request.expiresAt === undefined ? null : new Date(request.expiresAt);
  if (expiresAt !== null && expiresAt.getTime() <= Date.now()) {
    throw errors.invalidValue('expiresAt', 'must be in the future');
  }
  const { grant, applied } = await sql.begin(async (tx) => {
    const made = await createGrant(tx, {
      accountId: id,
      source: request.category === 'paid' ? 'manual' : 'promotional',
      category: request.category,
      priority: request.priority ?? DEFAULT_PRIORITY[request.category],
      expiresAt,
      amount: request.amount,
      businessKey: accountScopedKey('grant', id, request.idempotencyKey),
      kind: request.category === 'paid' ? 'manual_grant' : 'promotional_grant',
      reason: request.reason,
      createdBy,
    });
    // A replay changes nothing, so it records nothing.
    if (made.applied) {
      await recordAudit(tx, {
        actor: createdBy,
        action: 'grant.created',
        subject: grantSubject(made.grant.id),
        before: { accountId: id, balance: made.entry.balanceAfter - made.grant.amount },
        after: { accountId: id, balance: made.entry.balanceAfter, grant: presentGrant(made.grant) },
        reason: request.reason,
      });
    }
    return made;
  });
  const same =
    grant.amount === request.amount &&
    grant.category === request.category &&
    grant.priority === (request.priority ?? DEFAULT_PRIORITY[request.category]) &&
    grant.reason === request.reason &&
    (grant.expiresAt?.getTime() ?? null) === (expiresAt?.getTime() ?? null);
  if (!applied && !same) {
    throw errors.idempotencyKeyReused({
      at: grant.createdAt,
      made: `grant ${grant.id} (${grant.amount} ${grant.category} credits)`,
      details: {
        grantId: grant.id,
        amount: grant.amount,
        category: grant.category,
        priority: grant.priority,
        expiresAt: grant.expiresAt?.toISOString() ?? null,
        reasonMatches: grant.reason === request.reason,
      },
    });
  }
  // A replay answers what the first answer said, not what the grant holds now.
  return { grant: applied ? grant : await grantAsCreated(sql, grant), applied };
}

/**
 * Voids what remains of the account's grant, once, recorded in the audit log in the same
 * transaction; voiding a closed grant changes nothing and answers it as it is.
 */
async function voidGrant(
  sql: Sql,
  ids: { id: string; grantId: number },
  reason: string,
  who: string,
): Promise<Grant> {
  const { id, grantId } = ids;
  const found = await findGrant(sql, grantId);
  if (!found || found.accountId !== id) throw errors.grantNotFound(grantId);
  const { grant } = await sql.begin(async (tx) => {
    const closed = await closeGrantIn(tx, grantId, { as: 'voided', reason: `voided by ${who}: ${reason}` });
    // Voiding a closed grant changes nothing, so it records nothing.
    if (closed.closedNow) {
      const { balance } = await summarizeCredits(tx, id);
      const voided = closed.before.remaining;
      await recordAudit(tx, {
        actor: who,
        action: 'grant.voided',
        subject: grantSubject(grantId),
        before: { accountId: id, balance: balance + voided, grant: presentGrant(closed.before) },
        after: { accountId: id, balance, grant: presentGrant(closed.grant) },
        reason,
      });
    }
    return closed;
  });
  return grant;
}

// --- routes -------------------------------------------------------------------------------

/**
 * An account's grants; promotional and manual grants, and their voiding, are for admin keys:
 * each records the API key that did it.
 */
export const grantRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/grants',
    role: 'read',
    summary: "Page through an account's credit grants, newest first",
    params: accountParams,
    query: pageQuery('Entries'),
    responses: { 200: ['One page of grants with what remains of each.', grantPageResponse] },
    errors: { 400: 'Bad limit or cursor.', 404: '`account_not_found`.' },
    handler: async ({ params, query, deps }) => {
      const { items, nextCursor } = await grantPage(deps.sql, params.id, query);
      return { status: 200, body: { grants: items.map(presentGrant), nextCursor } };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/accounts/:id/grants',
    role: 'admin',
    summary: 'Grant promotional or manual credits, once per idempotency key',
    replays: 'the same `idempotencyKey` with the same parameters',
    params: accountParams,
    body: createGrantBody,
    responses: {
      201: [
        'Granted; `createdBy` names the API key. A replay answers the grant as it was created.',
        grantResponse,
      ],
    },
    errors: {
      400: '`invalid_request` (including an expiry in the past).',
      404: '`account_not_found`.',
      409:
        'The key was used with other parameters (`idempotency_key_reused`); `details` tell its first use: ' +
        '`firstUsedAt`, `grantId`, `amount`, `category`, `priority`, `expiresAt`, `reasonMatches`.',
    },
    handler: async ({ params, body, caller, deps }) => {
      const { grant, applied } = await grantCredits(deps.sql, params.id, body, caller.name);
      return { status: 201, body: presentGrant(grant), replayed: !applied };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/accounts/:id/grants/:grantId/void',
    role: 'admin',
    summary: 'Void what remains of a grant (once; what was spent stays spent)',
    params: grantParams,
    body: voidGrantBody,
    responses: { 200: ['The grant, voided.', grantResponse] },
    errors: { 400: '`invalid_request`.', 404: '`grant_not_found`.' },
    handler: async ({ params, body, caller, deps }) => ({
      status: 200,
      body: presentGrant(await voidGrant(deps.sql, params, body.reason, caller.name)),
    }),
  }),
];
