import type { Sql } from './client';
import { applyCreditMovement, type LedgerEntry } from './ledger';

export interface DebitRequest {
  accountId: string;
  amount: number;
  idempotencyKey: string;
  reason: string;
}

export class IdempotencyConflictError extends Error {
  constructor(readonly key: string) {
    super(`idempotency key ${key} was used with other parameters`);
    this.name = 'IdempotencyConflictError';
  }
}

/** The ledger key of a debit: the client's key, scoped to the account it spends from. */
export const debitKey = (accountId: string, idempotencyKey: string) => `debit:${accountId}:${idempotencyKey}`;

/**
 * Spends credits once per idempotency key, never below zero. A replay answers the original
 * entry (and the balance it left); the same key with another amount or reason is a conflict.
 */
export async function debitCredits(
  sql: Sql,
  request: DebitRequest,
): Promise<{ entry: LedgerEntry; applied: boolean }> {
  const result = await sql.begin((tx) =>
    applyCreditMovement(
      tx,
      {
        accountId: request.accountId,
        delta: -request.amount,
        kind: 'debit',
        businessKey: debitKey(request.accountId, request.idempotencyKey),
        reason: request.reason,
      },
      { floor: 0 },
    ),
  );
  const { entry } = result;
  if (!result.applied && (entry.delta !== -request.amount || entry.reason !== request.reason)) {
    throw new IdempotencyConflictError(request.idempotencyKey);
  }
  return result;
}
