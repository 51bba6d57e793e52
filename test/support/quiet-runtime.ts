import { Runtime } from '@temporalio/worker';

/** A logger that drops everything: for the runtime, and for activities run in a test's own environment. */
export const silentLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

let installed = false;

/** Keeps the SDK's own logging out of test output; failures still surface through assertions. */
export function installQuietRuntime(): void {
  if (installed) return;
  Runtime.install({
    logger: silentLogger,
    // The Rust core's own lines too (they go to stderr unless forwarded to the logger above).
    telemetryOptions: { logging: { forward: {} } },
  });
  installed = true;
}
