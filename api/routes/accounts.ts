import { Router } from 'express';
import type { Sql } from '../../db/client';
import { createAccount, findAccount, type Account } from '../../db/accounts';
import { debitCredits, IdempotencyConflictError } from '../../db/debits';
import { InsufficientCreditsError, listLedgerEntries, type LedgerEntry } from '../../db/ledger';
import { errors, parseOrThrow } from '../errors';
import { accountParams, createAccountBody, createDebitBody, ledgerQuery } from '../schemas';

const present = (account: Account) => ({ id: account.id, email: account.email, balance: account.balance });

const presentEntry = (entry: LedgerEntry) => ({
  id: entry.id,
  delta: entry.delta,
  kind: entry.kind,
  reference: entry.businessKey,
  reason: entry.reason,
  balanceAfter: entry.balanceAfter,
  createdAt: entry.createdAt.toISOString(),
});

// Cursors are opaque to clients: the ID of the last entry of a page, base64url-encoded.
const encodeCursor = (entryId: number) => Buffer.from(String(entryId)).toString('base64url');
function decodeCursor(cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  const id = Number(Buffer.from(cursor, 'base64url').toString());
  if (!Number.isSafeInteger(id) || id <= 0)
    throw errors.invalidValue('cursor', 'not a cursor this API returned');
  return id;
}

export function accountsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();

  async function requireAccount(id: string): Promise<Account> {
    const account = await findAccount(sql, id);
    if (!account) throw errors.accountNotFound(id);
    return account;
  }

  router.post('/v1/accounts', async (req, res) => {
    const body = parseOrThrow(createAccountBody, req.body);
    const { account, created } = await createAccount(sql, body);
    res.status(created ? 201 : 200).json(present(account));
  });

  router.get('/v1/accounts/:id', async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    res.json(present(await requireAccount(id)));
  });

  router.get('/v1/accounts/:id/ledger', async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const query = parseOrThrow(ledgerQuery, req.query);
    const beforeId = decodeCursor(query.cursor);
    await requireAccount(id);
    // One extra row tells whether another page follows, without a count query.
    const rows = await listLedgerEntries(sql, id, { limit: query.limit + 1, beforeId });
    const entries = rows.slice(0, query.limit);
    const last = entries[entries.length - 1];
    res.json({
      entries: entries.map(presentEntry),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.id) : null,
    });
  });

  router.post('/v1/accounts/:id/debits', async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const body = parseOrThrow(createDebitBody, req.body);
    await requireAccount(id);
    try {
      const { entry } = await debitCredits(sql, { accountId: id, ...body });
      res.status(201).json({ entryId: entry.id, balance: entry.balanceAfter });
    } catch (error) {
      if (error instanceof InsufficientCreditsError)
        throw errors.insufficientCredits(error.balance, body.amount);
      if (error instanceof IdempotencyConflictError) throw errors.idempotencyKeyReused();
      throw error;
    }
  });

  return router;
}
