import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { createCheckoutClosedActivities } from '../../activities/purchases/checkout-closed';
import {
  checkoutClosedStatusQuery,
  type CheckoutClosedWorkflowInput,
  type CheckoutClosedWorkflowResult,
  type CheckoutClosedWorkflowStatus,
} from './contract';
import { databaseActivityOptions } from '../shared/activity-options';
import { trackStage } from '../shared/billing-stage';
import { deliverEmail } from '../email/delivery';

type CheckoutClosedActivities = ReturnType<typeof createCheckoutClosedActivities>;

const checkouts = proxyActivities<CheckoutClosedActivities>(databaseActivityOptions);

/**
 * A checkout that will never pay (`checkout.session.async_payment_failed` or `.expired`): the
 * purchase is marked and nothing is granted. A failed payment is told to the customer once.
 */
export async function checkoutClosedWorkflow(
  input: CheckoutClosedWorkflowInput,
): Promise<CheckoutClosedWorkflowResult> {
  const { session } = input;
  const status: CheckoutClosedWorkflowStatus = {
    stage: 'recording',
    checkoutSessionId: session.id,
    accountId: session.accountId,
    purchaseStatus: null,
    notice: 'not_applicable',
  };
  const { enter, account } = trackStage(status, checkoutClosedStatusQuery);

  const closed = await checkouts.closeCheckout({
    session,
    outcome: input.outcome,
    workflowId: workflowInfo().workflowId,
  });
  account(closed.accountId);
  status.purchaseStatus = closed.status;
  if (closed.status === 'completed') {
    enter('already_completed');
    return status;
  }
  if (closed.emailKey !== null) {
    enter('sending_notice');
    status.notice = 'pending';
    status.notice = await deliverEmail(closed.emailKey, input.receiptDeadline);
  }
  enter('recorded');
  return status;
}
