import { Client, Connection } from '@temporalio/client';
import { once } from 'node:events';
import { loadApiConfig, loadOrExit } from '../config/env';
import { createLogger } from '../config/logger';
import { syncCatalogs } from '../db/catalog/packs';
import { createSql } from '../db/client';
import { createApp } from './app';
import { createMetrics } from './metrics';
import { createStripeClient } from '../stripe/client';
import { payloadEncryptionWarnings, temporalDataConverter } from '../config/payload-codec';
import { sealEndpointSecretsAtStart } from '../db/outbound-webhooks/endpoint-secrets';

async function main(): Promise<void> {
  const config = loadOrExit(() => loadApiConfig());
  const logger = createLogger({ level: config.logLevel, name: 'api' });
  const sql = createSql(config.databaseUrl, { max: config.databasePoolMax });

  const catalogs = await syncCatalogs(sql);
  await sealEndpointSecretsAtStart(sql, config.temporalPayloads.keyRing, logger);
  if (!catalogs.packs.applied) {
    logger.warn(catalogs.packs, 'pack catalog in the database is newer than this release; left as it is');
  }

  // Lazy: the API starts (and answers 503 to webhooks) while Temporal is unreachable.
  const connection = Connection.lazy({ address: config.temporal.address, connectTimeout: '3 seconds' });
  for (const warning of payloadEncryptionWarnings(config.temporalPayloads)) logger.warn(warning);
  const temporal = new Client({
    connection,
    namespace: config.temporal.namespace,
    dataConverter: temporalDataConverter(config.temporalPayloads),
  });
  const stripe = createStripeClient(config.stripe);
  if (!stripe) logger.warn('STRIPE_SECRET_KEY is not set: checkout requests answer stripe_not_configured');
  const app = createApp({ config, sql, temporal, stripe, logger, metrics: createMetrics() });

  const server = app.listen(config.port, config.host);
  await once(server, 'listening');
  logger.info(
    {
      host: config.host,
      port: config.port,
      taskQueue: config.temporal.taskQueue,
      livemode: config.stripe.livemode,
      webhookSecrets: config.webhookSecrets.length,
      apiKeys: config.apiKeys.length,
      payloadKeys: config.temporalPayloads.keyRing.keyIds,
      codecServer: config.codec.tokens.length > 0 ? '/codec' : 'off',
    },
    'api listening',
  );

  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close();
    server.closeIdleConnections();
    await once(server, 'close');
    await connection.close();
    await sql.end({ timeout: 5 });
    logger.info('api stopped');
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void shutdown(signal));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `api failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
