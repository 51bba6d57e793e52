import { proxyActivities } from '@temporalio/workflow';
import type { createSubscriptionActivities } from '../../activities/subscriptions/subscription';
import {
  subscriptionStatusQuery,
  type SubscriptionWorkflowInput,
  type SubscriptionWorkflowResult,
  type SubscriptionWorkflowStatus,
} from './contract';
import { databaseActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';
import { deliverEmail } from '../email/delivery';

type SubscriptionActivities = ReturnType<typeof createSubscriptionActivities>;

const subscriptions = proxyActivities<SubscriptionActivities>(databaseActivityOptions);

/**
 * One Stripe event about a subscription: a subscription-mode checkout session links it to an
 * account (and grants nothing: credits come with `invoice.paid`), or a
 * `customer.subscription.*` event reports its state, stored only if newer than what is stored.
 * When the subscription has ended and is linked, the customer is told, once.
 */
export async function subscriptionWorkflow(
  input: SubscriptionWorkflowInput,
): Promise<SubscriptionWorkflowResult> {
  const status: SubscriptionWorkflowStatus = {
    stage: input.action === 'link' ? 'linking' : 'syncing',
    subscriptionId: input.action === 'link' ? input.link.subscriptionId : input.subscription.id,
    accountId: input.action === 'link' ? input.link.accountId : null,
    subscriptionStatus: null,
    planId: null,
    reason: null,
    notice: 'not_applicable',
  };
  const { enter, account } = trackStage(status, subscriptionStatusQuery);

  let noticeKey: string | null;
  if (input.action === 'link') {
    const linked = await subscriptions.linkSubscriptionToAccount({ link: input.link });
    if (linked.outcome === 'account_unknown' || linked.outcome === 'conflict') {
      status.reason =
        linked.outcome === 'conflict'
          ? `the subscription is linked to account ${linked.linkedTo}`
          : linked.reason;
      enter(linked.outcome === 'conflict' ? 'link_conflict' : 'account_unknown');
      return status;
    }
    account(linked.accountId);
    if (linked.noticeKey === null) {
      enter(linked.outcome);
      return status;
    }
    noticeKey = linked.noticeKey;
  } else {
    const stored = await subscriptions.syncSubscription({
      subscription: input.subscription,
      eventId: input.eventId,
      eventCreated: input.eventCreated,
    });
    account(stored.accountId);
    status.subscriptionStatus = stored.status;
    status.planId = stored.planId;
    if (!stored.applied) {
      status.reason = 'a newer state of the subscription is already stored';
      enter('stale_state');
      return status;
    }
    if (stored.noticeKey === null) {
      enter('synced');
      return status;
    }
    noticeKey = stored.noticeKey;
  }

  enter('sending_notice');
  status.notice = 'pending';
  status.notice = await deliverEmail(noticeKey, input.receiptDeadline);
  enter(input.action === 'link' ? 'linked' : 'synced');
  return status;
}
