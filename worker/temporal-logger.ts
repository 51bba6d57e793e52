import { DefaultLogger, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../config/logger';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** Sends the SDK's logs (and workflow/activity `log` calls, with their workflow ID) to pino. */
export function pinoTemporalLogger(logger: Logger): DefaultLogger {
  return new DefaultLogger('INFO', (entry) => {
    logger[LEVELS[entry.level]]({ ...entry.meta }, entry.message);
  });
}
