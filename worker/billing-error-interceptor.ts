import { ApplicationFailure } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { BillingError } from '../domain/errors';

/**
 * Maps the service's errors to Temporal failures, in one place: a `BillingError` becomes an
 * application failure whose type is its code in PascalCase, non-retryable unless the error says
 * retrying may help. Anything else stays retryable, as the activity's retry policy says.
 */
export class BillingErrorInterceptor implements ActivityInboundCallsInterceptor {
  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
    try {
      return await next(input);
    } catch (error) {
      if (!(error instanceof BillingError)) throw error;
      throw ApplicationFailure.create({
        message: error.message,
        type: error.failureType,
        nonRetryable: !error.retryable,
        details: error.details === undefined ? [] : [error.details],
        cause: error,
      });
    }
  }
}

/** The activity interceptors every worker of the service runs. */
export const activityInterceptors = [() => ({ inbound: new BillingErrorInterceptor() })];
