import type { ActivityDependencies } from './dependencies';
import { createPurchaseActivities } from './purchase-activities';

export type { ActivityDependencies } from './dependencies';
export type { PurchaseValidation } from './purchase-activities';

/**
 * Activities are built from their dependencies, so the worker wires real ones and the tests
 * run these same functions against real PostgreSQL and SMTP servers. Each workflow family
 * contributes its own factory here.
 */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createPurchaseActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
