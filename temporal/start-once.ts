import {
  WorkflowExecutionAlreadyStartedError,
  type WorkflowClient,
  type WorkflowSignalWithStartOptions,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';

/** What a start came to: a new run, or a workflow ID that already ran (or runs). */
export type StartOutcome = 'started' | 'duplicate';

/** A start with its options: a plain one, or a signal-with-start (`signal` set). */
export type StartOnceOptions = WorkflowStartOptions | WorkflowSignalWithStartOptions<unknown[]>;

/**
 * Starts a workflow whose ID says which piece of work it is, so that starting it again is
 * answered, not failed: Temporal refusing the ID because it ran already is a `duplicate`. The
 * reuse policy is *reject duplicate* unless the caller names another. Any other error is the
 * caller's to handle (retry, 5xx, the maintenance sweep).
 */
export async function startOnce(
  workflow: Pick<WorkflowClient, 'start' | 'signalWithStart'>,
  workflowType: string,
  options: StartOnceOptions,
): Promise<StartOutcome> {
  const start = { workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE, ...options };
  try {
    if ('signal' in start) await workflow.signalWithStart(workflowType, start);
    else await workflow.start(workflowType, start);
    return 'started';
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return 'duplicate';
    throw error;
  }
}
