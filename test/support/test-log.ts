import type { ChildProcess } from 'node:child_process';
import { prettyFactory } from 'pino-pretty';
import { createLogger, type Logger } from '../../config/logger';
import { appendLog } from '../setup/test-logs';

/**
 * This test file's log (test/setup/test-logs.ts): what the service's loggers, the SDK and the
 * processes a test starts say goes here instead of the terminal; a failing test's part of it is
 * shown with the failure.
 */
export function testLogFile(): string {
  const file = process.env.TEST_LOG_FILE;
  if (!file) throw new Error('no test log file: run the tests with `npm test` (its environment names one)');
  return file;
}

export function writeTestLog(text: string): void {
  appendLog(testLogFile(), text);
}

// One line per entry, readable: `[08:07:18.486] INFO (api): request done {"status":200,…}`.
const prettify = prettyFactory({
  colorize: false,
  singleLine: true,
  translateTime: 'HH:MM:ss.l',
  ignore: 'pid,hostname,service',
});

/** The service's logger (its redaction included) writing into this file's log. */
export function testLogger(name: string, level = 'info'): Logger {
  return createLogger({ level, name }, { write: (line: string) => writeTestLog(prettify(line)) });
}

/**
 * Everything a child process prints, into this file's log, each line prefixed with `[label]`;
 * the child's stdout and stderr must be pipes. Returns the child.
 */
export function logOutputOf<T extends ChildProcess>(child: T, label: string): T {
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      if (lines.length > 0) writeTestLog(lines.map((line) => `[${label}] ${line}`).join('\n'));
    });
    stream?.on('end', () => {
      if (partial) writeTestLog(`[${label}] ${partial}`);
      partial = '';
    });
  }
  return child;
}
