import { setHandler, upsertSearchAttributes, type QueryDefinition } from '@temporalio/workflow';
import { AccountId, BillingStatus } from './search-attributes';

/**
 * Answers the `status` query from the workflow's status object, and keeps the `BillingStatus`
 * and `AccountId` search attributes in step with it, so operators find any run by its stage.
 */
export function trackStage<S extends { stage: string; accountId: string | null }>(
  status: S,
  query: QueryDefinition<S>,
) {
  setHandler(query, () => status);
  let shownAccount = status.accountId;
  return {
    enter: (stage: S['stage']): void => {
      status.stage = stage;
      upsertSearchAttributes([{ key: BillingStatus, value: stage }]);
    },
    /** The account, once an activity has found it (the webhook may not have known it). */
    account: (accountId: string | null): void => {
      status.accountId = accountId;
      if (accountId === null || accountId === shownAccount) return;
      shownAccount = accountId;
      upsertSearchAttributes([{ key: AccountId, value: accountId }]);
    },
  };
}
