import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FAILURE_CONVERTER_PATH } from '../../config/payload-codec';
import { WORKFLOWS_PATH } from '../../worker/create-worker';
import { runLogDir } from './test-logs';

/**
 * Bundles the workflow code once for the whole fast tier: every file that runs workflows on the
 * time-skipping server gives its worker this bundle (`FAST_WORKFLOW_BUNDLE`) instead of
 * bundling again. No service is started here: each file starts its own test server.
 */
export default async function fastSetup(): Promise<void> {
  // This run's log folder, made here before any test worker starts (test/setup/test-logs.ts).
  runLogDir();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'credits-billing-fast-'));
  // With the service's failure converter, as a worker bundles it (worker/create-worker.ts).
  const bundle = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: quietBundlerLogger,
  });
  const bundlePath = path.join(workDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  process.env.FAST_WORKFLOW_BUNDLE = bundlePath;
  process.env.FAST_WORK_DIR = workDir;
}

const quietBundlerLogger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
  log: () => {},
};
