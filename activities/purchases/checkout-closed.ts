import { log } from '@temporalio/activity';
import { closeCheckoutSession } from '../../db/purchases/checkout-closures';
import type { PurchaseRecordStatus } from '../../db/purchases/purchases';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import type { ActivityDependencies } from '../dependencies';

/** What the closed-checkout activities use: the database only. */
export type CheckoutClosedActivityDependencies = Pick<ActivityDependencies, 'sql'>;

/** Activities of the closed-checkout workflow. */
export function createCheckoutClosedActivities<D extends CheckoutClosedActivityDependencies>({ sql }: D) {
  return {
    async closeCheckout(input: {
      session: CheckoutSessionSummary;
      outcome: 'payment_failed' | 'expired';
      workflowId: string;
    }): Promise<{ status: PurchaseRecordStatus; accountId: string | null; emailKey: string | null }> {
      const result = await closeCheckoutSession(sql, {
        session: input.session,
        status: input.outcome,
        workflowId: input.workflowId,
      });
      log.info('checkout closed without payment', { checkoutSessionId: input.session.id, ...result });
      return result;
    },
  };
}
