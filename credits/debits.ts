import { errors } from '../domain/errors';
import { transactionCommittingWith, type Sql } from '../db/client';
import { drawDownThenCommit, type Spend } from './grants';

export interface DebitRequest {
  accountId: string;
  amount: number;
  idempotencyKey: string;
  reason: string;
}

/**
 * A client's idempotency key scoped to one account, as a ledger key. In the account ID, '%' and
 * ':' are percent-encoded, so the first ':' after the prefix always ends the account and no pair
 * (account, key) can spell another pair's key. Ordinary IDs read as they are: `debit:acct_42:job-7`.
 */
export const accountScopedKey = (prefix: string, accountId: string, idempotencyKey: string) =>
  `${prefix}:${accountId.replaceAll('%', '%25').replaceAll(':', '%3A')}:${idempotencyKey}`;

export const debitKey = (accountId: string, idempotencyKey: string) =>
  accountScopedKey('debit', accountId, idempotencyKey);

/**
 * Spends credits once per idempotency key, from live grants in draw-down order, never beyond
 * what is available. A replay answers the original entry (and the balance it left); the same
 * key with another amount, reason or account is a conflict. `followUps`: whether the debit
 * recorded work to start once it committed (a low-balance notice, a top-up).
 */
export async function debitCredits(sql: Sql, request: DebitRequest): Promise<Spend> {
  const result = await transactionCommittingWith(sql, (tx) =>
    drawDownThenCommit(tx, {
      accountId: request.accountId,
      amount: request.amount,
      businessKey: debitKey(request.accountId, request.idempotencyKey),
      kind: 'debit',
      reason: request.reason,
    }),
  );
  const { entry } = result;
  const sameRequest =
    entry.accountId === request.accountId &&
    entry.delta === -request.amount &&
    entry.reason === request.reason;
  if (!result.applied && !sameRequest) {
    const reasonMatches = entry.reason === request.reason;
    throw errors.idempotencyKeyReused({
      at: entry.createdAt,
      made: `ledger entry ${entry.id} (a debit of ${-entry.delta} credits${reasonMatches ? '' : ' with another reason'})`,
      details: { entryId: entry.id, amount: -entry.delta, reasonMatches },
    });
  }
  return result;
}
