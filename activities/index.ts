import { createCheckoutClosedActivities } from './purchases/checkout-closed';
import type { ActivityDependencies } from './dependencies';
import { createEmailActivities } from './email/email';
import { createInvoiceActivities } from './subscriptions/invoice';
import { createMaintenanceActivities } from './maintenance/maintenance';
import { createNoticeActivities } from './notices/expiry-notices';
import { createRetentionActivities } from './maintenance/retention';
import { createOutboundWebhookActivities } from './outbound-webhooks/dispatcher';
import { createPurchaseActivities } from './purchases/purchase';
import { createReconcileActivities } from './reconciliation/reconcile';
import { createReversalActivities } from './reversals/reversals';
import { createSubscriptionActivities } from './subscriptions/subscription';
import { createTopupActivities } from './topups/topup';
import { createFollowUpActivities } from './topups/follow-ups';

export type { ActivityDependencies, WorkflowDirectory } from './dependencies';

/**
 * Every activity the worker registers: each room's factory, given the worker's dependencies (each
 * reads only its part of them). Activities are built from their dependencies, so the worker wires
 * real ones and the tests run these same functions against real PostgreSQL and SMTP servers.
 * Workflows never proxy this union: each proxies its own room's factory (lint checks it).
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
    ...createRetentionActivities(deps),
    ...createOutboundWebhookActivities(deps),
    ...createReconcileActivities(deps),
    ...createTopupActivities(deps),
    ...createFollowUpActivities(deps),
    ...createNoticeActivities(deps),
  };
}

/** The union the worker registers, for tests that wrap it; no workflow proxies it. */
export type Activities = ReturnType<typeof createActivities>;
