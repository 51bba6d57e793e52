import { ApplicationFailure } from '@temporalio/activity';
import { AccountNotFoundError } from '../db/ledger';
import { NonRetryable } from '../domain/failure-types';

/** Runs a database write, turning "the account does not exist" into a non-retryable failure. */
export async function withAccountRequired<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (error instanceof AccountNotFoundError) {
      throw ApplicationFailure.nonRetryable(error.message, NonRetryable.AccountNotFound);
    }
    throw error;
  }
}
