import { createCheckoutClosedActivities } from './checkout-closed-activities';
import type { ActivityDependencies } from './dependencies';
import { createEmailActivities } from './email-activities';
import { createInvoiceActivities } from './invoice-activities';
import { createMaintenanceActivities } from './maintenance-activities';
import { createPurchaseActivities } from './purchase-activities';
import { createReversalActivities } from './reversal-activities';
import { createSubscriptionActivities } from './subscription-activities';

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
  };
}

export type Activities = ReturnType<typeof createActivities>;
