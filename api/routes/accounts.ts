import { z } from 'zod';
import {
  createAccount,
  findAccount,
  type Account,
  debitCredits,
  summarizeCredits,
  type CreditSummary,
  listLedgerEntries,
  type LedgerEntry,
  type LedgerEntryWithAllocations,
} from '../../credits/index';
import type { Sql } from '../../db/client';
import { startBalanceFollowUps, type BalanceFollowUpDependencies } from '../../temporal/follow-ups';
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

// --- schemas ------------------------------------------------------------------------------

const createAccountBody = z
  .strictObject({ id: accountId, email: z.email().max(254).meta({ example: 'billing@customer.example' }) })
  .meta({ id: 'CreateAccount' });

const ledgerQuery = pageQuery('Entries');

const createDebitBody = z
  .strictObject({
    amount: positiveCount.meta({ description: 'Credits to spend.', example: 5 }),
    idempotencyKey,
    reason: humanText(500).meta({ example: 'image generation' }),
  })
  .meta({ id: 'CreateDebit' });

const accountResponse = z
  .object({
    id: accountId,
    email: z.string(),
    balance: z.number().int().meta({ description: 'Σ ledger: what grants hold, less any debt.' }),
    available: z.number().int().meta({ description: 'What a debit or a hold may take now.' }),
    held: z.number().int().meta({ description: 'Credits held by open reservations.' }),
    debt: z
      .number()
      .int()
      .meta({ description: 'Spent credits a refund or dispute took back, not repaid yet.' }),
    credits: z
      .object({ paid: z.number().int(), promotional: z.number().int() })
      .meta({ description: 'What open grants hold, by category.' }),
  })
  .meta({ id: 'Account' });

const ledgerEntryResponse = z
  .object({
    id: z.number().int(),
    delta: z
      .number()
      .int()
      .meta({ description: 'Positive for grants, negative for debits and revocations.' }),
    kind: z.string().meta({ example: 'purchase' }),
    reference: z.string().meta({ description: 'The business key that makes this movement happen once.' }),
    reason: z.string().nullable(),
    balanceAfter: z.number().int(),
    allocations: z
      .array(z.object({ grantId: z.number().int(), amount: z.number().int() }))
      .meta({ description: 'Which grants the movement took from (negative: gave back to).' }),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'LedgerEntry' });

const ledgerPageResponse = z
  .object({ entries: z.array(ledgerEntryResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'LedgerPage' });

const debitResponse = z
  .object({
    entryId: z.number().int(),
    balance: z.number().int().meta({ description: 'The balance this debit left.' }),
  })
  .meta({ id: 'Debit' });

// --- operations ---------------------------------------------------------------------------

/** Finds the account or answers 404: every account route starts here. */
export async function requireAccount(sql: Sql, id: string): Promise<Account> {
  const account = await findAccount(sql, id);
  if (!account) throw errors.accountNotFound(id);
  return account;
}

/** An account with what its grants hold now. */
interface AccountStanding {
  account: Account;
  credits: CreditSummary;
}

const standingOf = async (sql: Sql, account: Account): Promise<AccountStanding> => ({
  account,
  credits: await summarizeCredits(sql, account.id),
});

/** Creates the account with a zero balance, or finds it unchanged. */
async function openAccount(sql: Sql, input: { id: string; email: string }) {
  const { account, created } = await createAccount(sql, input);
  return { standing: await standingOf(sql, account), created };
}

async function readAccount(sql: Sql, id: string): Promise<AccountStanding> {
  return standingOf(sql, await requireAccount(sql, id));
}

/** One page of the account's ledger, newest first. */
async function ledgerPage(sql: Sql, id: string, page: { limit: number; cursor?: string | undefined }) {
  const beforeId = decodeCursor(page.cursor);
  await requireAccount(sql, id);
  const rows = await listLedgerEntries(sql, id, { limit: page.limit + 1, beforeId });
  return pageOf(rows, page.limit);
}

/**
 * Spends credits once per idempotency key, then starts what the new balance asks for. A debit
 * that recorded no follow-up starts nothing; one left unstarted by a crash is started by the
 * maintenance schedule.
 */
async function spendCredits(
  deps: BalanceFollowUpDependencies,
  id: string,
  debit: { amount: number; idempotencyKey: string; reason: string },
): Promise<{ entry: LedgerEntry; applied: boolean }> {
  // The debit's lock finds the account (404 when there is none); follow-ups only when it recorded some.
  const { entry, applied, followUps } = await debitCredits(deps.sql, { accountId: id, ...debit });
  if (followUps) await startBalanceFollowUps(deps, id);
  return { entry, applied };
}

// --- presenting ---------------------------------------------------------------------------

const present = ({ account, credits }: AccountStanding) => ({
  id: account.id,
  email: account.email,
  balance: credits.balance,
  available: credits.available,
  held: credits.held,
  debt: credits.debt,
  credits: credits.byCategory,
});

const presentEntry = (entry: LedgerEntryWithAllocations) => ({
  id: entry.id,
  delta: entry.delta,
  kind: entry.kind,
  reference: entry.businessKey,
  reason: entry.reason,
  balanceAfter: entry.balanceAfter,
  allocations: entry.allocations,
  createdAt: entry.createdAt.toISOString(),
});

// --- routes -------------------------------------------------------------------------------

export const accountRoutes = [
  defineRoute({
    method: 'post',
    path: '/v1/accounts',
    role: 'write',
    summary: 'Create an account',
    body: createAccountBody,
    responses: {
      201: ['Created with a zero balance.', accountResponse],
      200: ['It already existed; unchanged.', accountResponse],
    },
    errors: { 400: 'Invalid body (`invalid_request`, `malformed_json`).' },
    handler: async ({ body, deps }) => {
      const { standing, created } = await openAccount(deps.sql, body);
      return { status: created ? 201 : 200, body: present(standing) };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id',
    role: 'read',
    summary: 'Read an account and its balance',
    params: accountParams,
    responses: { 200: ['The account.', accountResponse] },
    errors: { 404: '`account_not_found`.' },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: present(await readAccount(deps.sql, params.id)),
    }),
  }),

  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/ledger',
    role: 'read',
    summary: "Page through an account's ledger, newest first",
    params: accountParams,
    query: ledgerQuery,
    responses: { 200: ['One page; `nextCursor` is null on the last.', ledgerPageResponse] },
    errors: { 400: 'Bad limit or cursor.', 404: '`account_not_found`.' },
    handler: async ({ params, query, deps }) => {
      const { items, nextCursor } = await ledgerPage(deps.sql, params.id, query);
      return { status: 200, body: { entries: items.map(presentEntry), nextCursor } };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/accounts/:id/debits',
    role: 'write',
    summary: 'Spend credits, once per idempotency key',
    replays: 'the same `idempotencyKey` with the same amount and reason',
    params: accountParams,
    body: createDebitBody,
    responses: { 201: ['Debited. A replay answers the original result.', debitResponse] },
    errors: {
      400: '`invalid_request`.',
      402: 'The balance would go below zero (`insufficient_credits`).',
      404: '`account_not_found`.',
      409:
        'The key was used with another amount or reason (`idempotency_key_reused`); `details` tell its first use: ' +
        '`firstUsedAt`, `entryId`, `amount`, `reasonMatches`.',
    },
    handler: async ({ params, body, deps }) => {
      const { entry, applied } = await spendCredits(deps, params.id, body);
      return { status: 201, body: { entryId: entry.id, balance: entry.balanceAfter }, replayed: !applied };
    },
  }),
];
