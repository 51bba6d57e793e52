import { Router } from 'express';
import { z } from 'zod';
import type { Sql } from '../../db/client';
import { createAccount, findAccount, type Account } from '../../db/accounts';
import { errors, parseOrThrow } from '../errors';

export const accountIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'letters, digits, _ . : - (at most 128)');

export const createAccountBody = z.strictObject({
  id: accountIdSchema,
  email: z.email().max(254),
});

const accountParams = z.object({ id: accountIdSchema });

const present = (account: Account) => ({ id: account.id, email: account.email, balance: account.balance });

export function accountsRouter({ sql }: { sql: Sql }): Router {
  const router = Router();

  router.post('/v1/accounts', async (req, res) => {
    const body = parseOrThrow(createAccountBody, req.body);
    const { account, created } = await createAccount(sql, body);
    res.status(created ? 201 : 200).json(present(account));
  });

  router.get('/v1/accounts/:id', async (req, res) => {
    const { id } = parseOrThrow(accountParams, req.params);
    const account = await findAccount(sql, id);
    if (!account) throw errors.notFound(`Account ${id}`);
    res.json(present(account));
  });

  return router;
}
