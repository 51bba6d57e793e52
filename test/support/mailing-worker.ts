import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { temporalDataConverter } from '../../config/payload-codec';
import { createMailer } from '../../email/mailer';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { temporalWorkflowDirectory } from '../../worker/maintenance-schedule';
import { TEST_OUTBOX_AGES, type Harness } from './harness';

export type MailingWorker = Awaited<ReturnType<typeof startWorkerMailingTo>>;

/**
 * The service's activities on the harness's task queue (started with `worker: false`), mailing
 * through `smtpUrl`: a scripted SMTP server whose answers a test decides.
 */
export async function startWorkerMailingTo(
  h: Harness,
  smtpUrl: string,
  tuning: Pick<WorkerOptions, 'maxConcurrentWorkflowTaskExecutions'> = {},
) {
  const connection = await NativeConnection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS as string });
  const mailer = createMailer({ smtpUrl, from: 'Credits <billing@credits.test>' });
  const instance = await Worker.create({
    connection,
    namespace: h.config.temporal.namespace,
    taskQueue: h.config.temporal.taskQueue,
    workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
    dataConverter: temporalDataConverter(h.config.temporalPayloads),
    activities: createActivities({
      sql: h.sql,
      mailer,
      invoicePayments: null,
      workflows: temporalWorkflowDirectory(h.temporal),
      config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    }),
    interceptors: { activity: activityInterceptors },
    ...tuning,
  });
  const running = instance.run();
  return {
    async stop() {
      instance.shutdown();
      await running;
      await connection.close();
      mailer.close();
    },
  };
}
