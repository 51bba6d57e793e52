import { WorkflowIdReusePolicy } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { createActivities } from '../../activities';
import { createMailer } from '../../email/mailer';
import { stripeEventLister, type ReconcileSettings } from '../../activities/reconciliation/reconcile';
import { createStripeClient } from '../../stripe/client';
import {
  RECONCILE_WORKFLOW_TYPE,
  reconcileScheduleId,
  type ReconcileResult,
  type ReconcileWorkflowInput,
} from '../../workflows/reconciliation/contract';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { temporalEventStarter, temporalWorkflowDirectory } from '../../worker/maintenance-schedule';
import { TEST_OUTBOX_AGES, type Harness } from './harness';
import { StripeStandIn } from './stripe-stand-in';

/** Reconciliation in tests: small pages, no delay, and the stand-in as Stripe. */
export const TEST_RECONCILE_SETTINGS = {
  pageSize: 2,
  sliceSeconds: 24 * 60 * 60,
  overlapSeconds: 60,
  lookbackSeconds: 30 * 24 * 60 * 60,
  delaySeconds: 0,
};

export interface ReconcileWorker {
  /** The task queue the reconcile workflow runs on; its event workflows go to the harness's. */
  taskQueue: string;
  /** The watermark its scheduled (window-less) runs move. */
  watermark: string;
  run(
    input?: ReconcileWorkflowInput,
  ): Promise<{ workflowId: string; firstRunId: string; result: Promise<ReconcileResult> }>;
  stop(): Promise<void>;
}

/**
 * A worker of its own task queue for the reconcile workflow and its activities, reading events
 * from the stand-in through the SDK and starting event workflows on the harness's task queue,
 * where the harness's worker runs them.
 */
export async function startReconcileWorker(
  h: Harness,
  stripe: StripeStandIn,
  settings: Partial<Omit<ReconcileSettings, 'routes'>> = {},
): Promise<ReconcileWorker> {
  const taskQueue = `${h.config.temporal.taskQueue}-reconcile`;
  const client = createStripeClient({ secretKey: 'sk_test_standin0123456789', apiBaseUrl: stripe.url });
  if (!client) throw new Error('no Stripe client');
  const connection = await NativeConnection.connect({ address: h.config.temporal.address });
  const mailer = createMailer({ smtpUrl: h.smtp.url, from: 'Credits <billing@credits.test>' });
  const worker = await Worker.create({
    connection,
    namespace: h.config.temporal.namespace,
    taskQueue,
    workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
    dataConverter: h.temporal.options.dataConverter,
    activities: createActivities({
      sql: h.sql,
      mailer,
      invoicePayments: null,
      workflows: temporalWorkflowDirectory(h.temporal),
      reconcile: {
        listEvents: stripeEventLister(client),
        starter: temporalEventStarter(h.temporal, h.config.temporal.taskQueue),
        settings: {
          routes: {
            purchaseReviewTimeout: h.config.purchaseReviewTimeout,
            receiptDeadline: h.config.receiptDeadline,
          },
          ...TEST_RECONCILE_SETTINGS,
          ...settings,
        },
      },
      config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    }),
    interceptors: { activity: activityInterceptors },
  });
  const running = worker.run();
  return {
    taskQueue,
    watermark: reconcileScheduleId(taskQueue),
    async run(input = {}) {
      const workflowId = `reconcile-test-${randomUUID()}`;
      const handle = await h.temporal.workflow.start(RECONCILE_WORKFLOW_TYPE, {
        workflowId,
        taskQueue,
        args: [input],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
      return {
        workflowId,
        firstRunId: handle.firstExecutionRunId,
        result: handle.result() as Promise<ReconcileResult>,
      };
    },
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      mailer.close();
    },
  };
}

/**
 * A reconcile run for the recorded histories: one purchase Stripe lists and no webhook
 * delivered, found and started. Answers the run's workflow ID once it has completed.
 */
export async function recordedReconcileRun(h: Harness): Promise<string> {
  const stripe = await StripeStandIn.start();
  const reconcile = await startReconcileWorker(h, stripe);
  try {
    const account = await h.newAccount();
    const now = Math.floor(Date.now() / 1000);
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    stripe.publishEvent(stripeEvent('checkout.session.completed', session, { created: now - 5 }));
    const { workflowId, result } = await reconcile.run({
      window: { fromSeconds: now - 3600, untilSeconds: now },
    });
    await result;
    return workflowId;
  } finally {
    await reconcile.stop();
    await stripe.stop();
  }
}
