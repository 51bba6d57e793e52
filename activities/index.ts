import { createCheckoutClosedActivities } from './checkout-closed-activities';
import type { ActivityDependencies } from './dependencies';
import { createEmailActivities } from './email-activities';
import { createInvoiceActivities } from './invoice-activities';
import { createMaintenanceActivities } from './maintenance-activities';
import { createOutboundWebhookActivities } from './outbound-webhook-activities';
import { createPurchaseActivities } from './purchase-activities';
import { createReconcileActivities } from './reconcile-activities';
import { createReversalActivities } from './reversal-activities';
import { createSubscriptionActivities } from './subscription-activities';
import { createTopupActivities } from './topup-activities';

export type { ActivityDependencies, WorkflowDirectory } from './dependencies';

/**
 * Activities are built from their dependencies, so the worker wires real ones and the tests
 * run these same functions against real PostgreSQL and SMTP servers. Each workflow family
 * contributes its own factory here.
 */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createPurchaseActivities(deps),
    ...createSubscriptionActivities(deps),
    ...createInvoiceActivities(deps),
    ...createReversalActivities(deps),
    ...createCheckoutClosedActivities(deps),
    ...createEmailActivities(deps),
    ...createMaintenanceActivities(deps),
    ...createOutboundWebhookActivities(deps),
    ...createReconcileActivities(deps),
    ...createTopupActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
