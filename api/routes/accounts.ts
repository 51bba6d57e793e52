import { Router } from 'express';
import type { Sql } from '../../db/client';
import { createAccount, findAccount, type Account } from '../../credits/accounts';
import { summarizeCredits } from '../../credits/grants';
import { debitCredits } from '../../credits/debits';
import { listLedgerEntries, type LedgerEntryWithAllocations } from '../../credits/ledger';
import { decodeCursor, pageOf } from '../cursors';
import { errors, parseOrThrow } from '../errors';
import { accountParams, createAccountBody, createDebitBody, ledgerQuery } from '../schemas';
import { requireRole } from '../auth';
import { startBalanceFollowUps, type BalanceFollowUpDependencies } from '../../temporal/follow-ups';

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

/** Finds the account or answers 404: every account route starts here. */
export async function requireAccount(sql: Sql, id: string): Promise<Account> {
  const account = await findAccount(sql, id);
  if (!account) throw errors.accountNotFound(id);
  return account;
}

export function accountsRouter(deps: BalanceFollowUpDependencies): Router {
  const { sql } = deps;
  const router = Router();

  async function present(account: Account) {
    const credits = await summarizeCredits(sql, account.id);
    return {
      id: account.id,
      email: account.email,
      balance: credits.balance,
      available: credits.available,
      held: credits.held,
      debt: credits.debt,
      credits: credits.byCategory,
    };
  }

  router.post('/v1/accounts', requireRole('write'), async (req, res) => {
    const body = parseOrThrow(createAccountBody, req.body);
    const { account, created } = await createAccount(sql, body);
    res.status(created ? 201 : 200).json(await present(account));
  });

  router.get('/v1/accounts/:id', requireRole('read'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    res.json(await present(await requireAccount(sql, id)));
  });

  router.get('/v1/accounts/:id/ledger', requireRole('read'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const query = parseOrThrow(ledgerQuery, req.query);
    const beforeId = decodeCursor(query.cursor);
    await requireAccount(sql, id);
    const rows = await listLedgerEntries(sql, id, { limit: query.limit + 1, beforeId });
    const { items, nextCursor } = pageOf(rows, query.limit);
    res.json({ entries: items.map(presentEntry), nextCursor });
  });

  router.post('/v1/accounts/:id/debits', requireRole('write'), async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(createDebitBody, req.body);
    await requireAccount(sql, id);
    const { entry } = await debitCredits(sql, { accountId: id, ...body });
    await startBalanceFollowUps(deps, id);
    res.status(201).json({ entryId: entry.id, balance: entry.balanceAfter });
  });

  return router;
}
