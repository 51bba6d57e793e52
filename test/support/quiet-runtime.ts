import { Runtime } from '@temporalio/worker';

let installed = false;

/** Keeps the SDK's own logging out of test output; failures still surface through assertions. */
export function installQuietRuntime(): void {
  if (installed) return;
  Runtime.install({ logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } });
  installed = true;
}
