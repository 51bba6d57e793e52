import { DefaultLogger, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../config/logger';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

// What the workflow bundler says at every start (the bundle's size, webpack's statistics): debug.
const BUNDLER_CHATTER = /^Workflow bundle created$|webpack [\d.]+ compiled/;

/**
 * Sends the SDK's logs (and workflow/activity `log` calls, with their workflow ID) to pino. A
 * workflow ID is a Stripe event ID wherever a webhook started the run, so it is also the line's
 * `eventId`, the name the API logs it under.
 */
export function pinoTemporalLogger(logger: Logger): DefaultLogger {
  const threshold = logger.level === 'trace' ? 'TRACE' : logger.level === 'debug' ? 'DEBUG' : 'INFO';
  return new DefaultLogger(threshold, (entry) => {
    const meta: Record<string, unknown> = { ...entry.meta };
    // The SDK names a failure `error` ("Activity failed", "Workflow failed"); pino serializes an
    // Error (message, type, stack, cause) under `err` only, and anywhere else as `{}`.
    if (meta.error instanceof Error && meta.err === undefined) {
      meta.err = meta.error;
      delete meta.error;
    }
    const { workflowId } = meta;
    if (typeof workflowId === 'string' && workflowId.startsWith('evt_') && meta.eventId === undefined) {
      meta.eventId = workflowId;
    }
    const level =
      entry.level === 'INFO' && BUNDLER_CHATTER.test(entry.message) ? 'debug' : LEVELS[entry.level];
    logger[level](meta, entry.message);
  });
}
