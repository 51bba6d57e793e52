import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { WorkflowDirectory } from '../activities';
import { MAINTENANCE_WORKFLOW_TYPE, maintenanceScheduleId } from '../domain/maintenance-workflow-contract';

/**
 * Creates the maintenance schedule of a task queue, or brings an existing one up to date, so
 * every worker can call this at start-up. Overlapping runs are skipped: one at a time suffices.
 */
export async function ensureMaintenanceSchedule(
  client: Client,
  options: { taskQueue: string; interval: string },
): Promise<string> {
  const scheduleId = maintenanceScheduleId(options.taskQueue);
  const spec = { intervals: [{ every: options.interval }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: MAINTENANCE_WORKFLOW_TYPE,
    workflowId: scheduleId,
    taskQueue: options.taskQueue,
    args: [] as [],
    workflowExecutionTimeout: '30 minutes',
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

/** Answers from Temporal's own record whether a workflow still runs. */
export function temporalWorkflowDirectory(client: Client): WorkflowDirectory {
  return {
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
