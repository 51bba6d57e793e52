import { log } from '@temporalio/activity';
import { findAccount } from '../../credits/index';
import { findPlanByPrice } from '../../db/catalog/plans';
import {
  applySubscriptionState,
  linkSubscription,
  type LinkOutcome,
  type StateOutcome,
} from '../../db/subscriptions/subscriptions';
import type { SubscriptionSummary } from '../../stripe/billing-objects';
import type { SubscriptionLink } from '../../workflows/subscriptions/contract';
import type { ActivityDependencies } from '../dependencies';

export type LinkResult = LinkOutcome | { outcome: 'account_unknown'; reason: string };

/** What the subscription activities use: the database only. */
export type SubscriptionActivityDependencies = Pick<ActivityDependencies, 'sql'>;

/** Activities of the subscription workflow: links and states, never credits. */
export function createSubscriptionActivities<D extends SubscriptionActivityDependencies>({ sql }: D) {
  return {
    async linkSubscriptionToAccount(input: { link: SubscriptionLink }): Promise<LinkResult> {
      const { link } = input;
      if (!link.accountId) {
        return {
          outcome: 'account_unknown',
          reason: 'the session names no account (metadata.accountId or client_reference_id)',
        };
      }
      if (!(await findAccount(sql, link.accountId))) {
        return { outcome: 'account_unknown', reason: `account ${link.accountId} does not exist` };
      }
      const result = await linkSubscription(sql, {
        subscriptionId: link.subscriptionId,
        accountId: link.accountId,
        customerId: link.customerId,
        checkoutSessionId: link.checkoutSessionId,
      });
      const logged = { subscriptionId: link.subscriptionId, ...result };
      if (result.outcome === 'conflict') log.warn('subscription already linked to another account', logged);
      else log.info('subscription link', logged);
      return result;
    },

    async syncSubscription(input: {
      subscription: SubscriptionSummary;
      eventId: string;
      eventCreated: number;
    }): Promise<StateOutcome> {
      const { subscription } = input;
      const plan = subscription.priceId ? await findPlanByPrice(sql, subscription.priceId) : null;
      const outcome = await applySubscriptionState(sql, { ...input, planId: plan?.id ?? null });
      log.info(outcome.applied ? 'subscription state stored' : 'older subscription state ignored', {
        subscriptionId: subscription.id,
        status: subscription.status,
        storedStatus: outcome.status,
      });
      return outcome;
    },
  };
}
