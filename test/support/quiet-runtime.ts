import { MockActivityEnvironment } from '@temporalio/testing';
import {
  Runtime,
  makeTelemetryFilterString,
  type LogLevel,
  type LogMetadata,
  type Logger,
} from '@temporalio/worker';
import { pinoTemporalLogger } from '../../worker/temporal-logger';
import { testLogger } from './test-log';

/** A logger that drops everything: for the runtime, and for activities run in a test's own environment. */
export const silentLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/**
 * The SDK's logs into this test file's log, as the worker routes them to its pino logger
 * (worker/main.ts): activities' and workflows' `log`, the runtime's own lines. For an activity a
 * test runs in its own `MockActivityEnvironment`, whose default logger writes to stderr.
 */
export function temporalTestLogger(): Logger {
  const logger = pinoTemporalLogger(testLogger('temporal'));
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => {
    if (!MISLEADING.test(message)) logger.log(level, message, meta);
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

/**
 * Said by the SDK's core when a worker starts against a server that does not advertise the
 * `activity_failure_include_heartbeat` capability (sdk-core's worker/mod.rs), whatever the
 * server's version: Temporal's time-skipping test server (the fast tier) does not. The dev server
 * (1.32) does, and its workers never say it. Left out of the tests' logs, where it would mislead.
 */
const MISLEADING = /^Temporal Server 1\.16\.0 or newer is required/;

/** An environment to run an activity in outside a worker, its `log` lines in the file's log. */
export function loggedActivityEnvironment(
  info?: ConstructorParameters<typeof MockActivityEnvironment>[0],
): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: temporalTestLogger() });
}

let installed = false;

/** Keeps the SDK's own logging out of test output: it goes to the file's log (test/support/test-log.ts). */
export function installQuietRuntime(): void {
  if (installed) return;
  Runtime.install({
    logger: temporalTestLogger(),
    // The Rust core's own lines too (they go to stderr unless forwarded to the logger above).
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });
  installed = true;
}
