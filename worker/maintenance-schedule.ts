import type { Duration } from '@temporalio/common';
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { WorkflowDirectory } from '../activities';
import type Stripe from 'stripe';
import {
  stripeEventLister,
  type EventWorkflowStarter,
  type ReconcileDependencies,
  type ReconcileSettings,
} from '../activities/reconciliation/reconcile';
import { MAINTENANCE_WORKFLOW_TYPE, maintenanceScheduleId } from '../workflows/maintenance/contract';
import {
  RECONCILE_WORKFLOW_TYPE,
  reconcileScheduleId,
  type ReconcileWorkflowInput,
} from '../workflows/reconciliation/contract';
import { startEventWorkflow } from '../stripe/event-intake';
import { startOnce } from '../temporal/start-once';
import type { RouteSettings } from '../stripe/event-routes';

/**
 * Creates the maintenance schedule of a task queue, or brings an existing one up to date, so
 * every worker can call this at start-up. Overlapping runs are skipped: one at a time suffices.
 */
export async function ensureMaintenanceSchedule(
  client: Client,
  options: { taskQueue: string; interval: Duration },
): Promise<string> {
  const scheduleId = maintenanceScheduleId(options.taskQueue);
  const spec = { intervals: [{ every: options.interval }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: MAINTENANCE_WORKFLOW_TYPE,
    workflowId: scheduleId,
    taskQueue: options.taskQueue,
    args: [] as [],
    workflowExecutionTimeout: '30 minutes' as const,
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(scheduleId).update((current) => ({ ...current, spec, action }));
  }
  return scheduleId;
}

/** Answers from Temporal's own record whether a workflow still runs, and starts workflows once. */
export function temporalWorkflowDirectory(client: Client): WorkflowDirectory {
  return {
    startOnce: (workflowType, options) => startOnce(client.workflow, workflowType, options),
    async isRunning(workflowId) {
      try {
        const description = await client.workflow.getHandle(workflowId).describe();
        return description.status.name === 'RUNNING';
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return false;
        throw error;
      }
    },
  };
}

/**
 * Creates the reconcile schedule of a task queue, or brings it up to date, as the maintenance
 * schedule is. A run still going (Stripe down, a long backfill) makes the next ones skip; one
 * missed while Temporal was down runs once when it is back.
 */
export async function ensureReconcileSchedule(
  client: Client,
  options: { taskQueue: string; interval: Duration },
): Promise<string> {
  const scheduleId = reconcileScheduleId(options.taskQueue);
  const spec = { intervals: [{ every: options.interval }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: RECONCILE_WORKFLOW_TYPE,
    workflowId: scheduleId,
    taskQueue: options.taskQueue,
    args: [{}] as [ReconcileWorkflowInput],
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: options.interval },
    });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(scheduleId).update((current) => ({ ...current, spec, action }));
  }
  return scheduleId;
}

/** Starts event workflows as the webhook does, on the service's task queue (reconciliation). */
export function temporalEventStarter(client: Client, taskQueue: string): EventWorkflowStarter {
  return {
    start: async (route, eventId, memo) =>
      (await startEventWorkflow(client.workflow, route, eventId, taskQueue, memo)).outcome,
    async startedByRun(workflowId) {
      try {
        const { memo } = await client.workflow.getHandle(workflowId).describe();
        const run = memo?.reconcileRun;
        return typeof run === 'string' ? run : null;
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return null;
        throw error;
      }
    },
  };
}

/** Reconciliation reads full pages, in slices of a day: the watermark moves a day at a time at most. */
const RECONCILE_PAGE_SIZE = 100;
const RECONCILE_SLICE_SECONDS = 24 * 60 * 60;

/** What the reconcile activities are built from in the worker: the SDK's events, this client's starts. */
export function reconcileDependencies(
  stripe: Stripe,
  client: Client,
  config: {
    temporal: { taskQueue: string };
    routes: RouteSettings;
    reconcile: Omit<ReconcileSettings, 'routes' | 'pageSize' | 'sliceSeconds'>;
  },
): ReconcileDependencies {
  return {
    listEvents: stripeEventLister(stripe),
    starter: temporalEventStarter(client, config.temporal.taskQueue),
    settings: {
      routes: config.routes,
      pageSize: RECONCILE_PAGE_SIZE,
      sliceSeconds: RECONCILE_SLICE_SECONDS,
      overlapSeconds: config.reconcile.overlapSeconds,
      lookbackSeconds: config.reconcile.lookbackSeconds,
      delaySeconds: config.reconcile.delaySeconds,
    },
  };
}
