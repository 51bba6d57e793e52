import { DEFAULT_RETENTION_SETTINGS } from '../activities/maintenance/retention';
import { Client, Connection } from '@temporalio/client';
import { msToNumber } from '@temporalio/common/lib/time';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { stripeInvoicePaymentLookup } from '../stripe/invoice-payments';
import { createMailer } from '../email/mailer';
import { createSql } from '../db/client';
import { sealEndpointSecretsAtStart } from '../db/outbound-webhooks/endpoint-secrets';
import { loadOrExit, loadWorkerConfig } from '../config/env';
import { createLogger } from '../config/logger';
import { payloadEncryptionWarnings, temporalDataConverter } from '../config/payload-codec';
import { createStripeClient } from '../stripe/client';
import { outboundWebhookSettings } from '../activities/outbound-webhooks/dispatcher';
import { stripeTopupPayments } from '../activities/topups/topup';
import { createWorker } from './create-worker';
import {
  ensureMaintenanceSchedule,
  ensureReconcileSchedule,
  reconcileDependencies,
  temporalWorkflowDirectory,
} from './maintenance-schedule';
import { freeLoopbackPort, startMetricsServer } from './metrics-server';
import { createWorkerMetrics } from './metrics';
import { startOutboundWebhookKicker } from '../temporal/outbound-webhook-kicker';
import { pinoTemporalLogger } from './temporal-logger';

async function main(): Promise<void> {
  const config = loadOrExit(() => loadWorkerConfig());
  const logger = createLogger({ level: config.logLevel, name: 'worker' });
  // The SDK's exporter stays on loopback: its metrics are served with ours (worker/metrics-server.ts).
  const runtimeMetricsPort = config.metrics ? await freeLoopbackPort() : null;
  Runtime.install({
    logger: pinoTemporalLogger(logger),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      ...(runtimeMetricsPort === null
        ? {}
        : {
            metrics: {
              prometheus: {
                bindAddress: `127.0.0.1:${runtimeMetricsPort}`,
                countersTotalSuffix: true,
                useSecondsForDurations: true,
              },
            },
          }),
    },
  });

  const sql = createSql(config.databaseUrl, { max: config.databasePoolMax });
  const metrics = createWorkerMetrics({ sql });
  const metricsServer = config.metrics
    ? await startMetricsServer({
        registry: metrics.registry,
        host: config.metrics.host,
        port: config.metrics.port,
        runtimeMetricsUrl: `http://127.0.0.1:${String(runtimeMetricsPort)}/metrics`,
      })
    : null;
  await sealEndpointSecretsAtStart(sql, config.temporalPayloads.keyRing, logger);
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.emailFrom });
  const stripe = createStripeClient(config.stripe);
  if (!stripe) {
    logger.warn(
      'STRIPE_SECRET_KEY is not set: no reconciliation with Stripe, and refunds of invoices whose events omit their payments are not matched',
    );
  }
  for (const warning of payloadEncryptionWarnings(config.temporalPayloads)) logger.warn(warning);
  const dataConverter = temporalDataConverter(config.temporalPayloads);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({
    connection: clientConnection,
    namespace: config.temporal.namespace,
    dataConverter,
  });
  const worker = await createWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    dataConverter,
    dependencies: {
      sql,
      mailer,
      invoicePayments: stripe && stripeInvoicePaymentLookup(stripe),
      workflows: temporalWorkflowDirectory(client),
      reconcile: stripe && reconcileDependencies(stripe, client, config),
      topups: stripe && { payments: stripeTopupPayments(stripe), returnUrl: config.topupReturnUrl },
      metrics: metrics.business,
      config: {
        stripe: config.stripe,
        emailDomain: emailDomainOf(config.emailFrom),
        outbox: {
          sweepAfterMs: msToNumber(config.maintenance.outboxSweepAfter),
          giveUpAfterMs: msToNumber(config.maintenance.outboxGiveUpAfter),
        },
        outboundWebhooks: outboundWebhookSettings(config.outboundWebhooks, config.nodeEnv === 'production'),
        creditExpiryNoticeMs: config.creditExpiryNoticeMs,
        secretKeys: config.temporalPayloads.keyRing,
        retention: { ...DEFAULT_RETENTION_SETTINGS, ...config.retention },
      },
    },
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
  });
  const scheduleId = await ensureMaintenanceSchedule(client, {
    taskQueue: config.temporal.taskQueue,
    interval: config.maintenance.interval,
  });
  const kicker = await startOutboundWebhookKicker({
    sql,
    client,
    taskQueue: config.temporal.taskQueue,
    logger,
  });
  const reconcileSchedule = stripe
    ? await ensureReconcileSchedule(client, {
        taskQueue: config.temporal.taskQueue,
        interval: config.reconcile.interval,
      })
    : null;
  logger.info(
    {
      maintenanceSchedule: scheduleId,
      reconcileSchedule,
      taskQueue: config.temporal.taskQueue,
      namespace: config.temporal.namespace,
      livemode: config.stripe.livemode,
      payloadKeys: config.temporalPayloads.keyRing.keyIds,
      metricsUrl: metricsServer?.url ?? null,
    },
    'worker started',
  );
  // The SDK's runtime already turns SIGINT/SIGTERM into worker.shutdown(); run() then resolves.
  await worker.run();
  await kicker.close();
  await metricsServer?.close();
  await clientConnection.close();
  await connection.close();
  mailer.close();
  await sql.end({ timeout: 5 });
  logger.info('worker stopped');
}

function emailDomainOf(from: string): string {
  return /@([^>\s]+)/.exec(from)?.[1] ?? 'localhost';
}

main().catch((error: unknown) => {
  process.stderr.write(
    `worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
