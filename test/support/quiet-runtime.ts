import { Runtime } from '@temporalio/worker';

let installed = false;

/** Keeps the SDK's own logging out of test output; failures still surface through assertions. */
export function installQuietRuntime(): void {
  if (installed) return;
  Runtime.install({
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    // The Rust core's own lines too (they go to stderr unless forwarded to the logger above).
    telemetryOptions: { logging: { forward: {} } },
  });
  installed = true;
}
