import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';
import { writeFileSync } from 'node:fs';
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { TEST_ENDS, TEST_STARTS, appendLog, logFileOf, testTitle } from './test-logs';

/**
 * Node's environment with a log file per test file (test/setup/test-logs.ts): its path is
 * `process.env.TEST_LOG_FILE` for test support code, the console writes there, and each test is
 * marked where it starts and ends, so the reporter can show a failing test's own lines.
 */
export default class LoggedTestEnvironment extends TestEnvironment {
  private readonly logFile: string;

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.logFile = logFileOf(context.testPath);
    writeFileSync(this.logFile, '');
    // The sandbox's own copy of the environment: the file is this test file's alone.
    this.global.process.env.TEST_LOG_FILE = this.logFile;
  }

  override async setup(): Promise<void> {
    await super.setup();
    const logFile = this.logFile;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        appendLog(logFile, chunk.toString());
        done();
      },
    });
    // What a test prints (and any library that uses the console): in the log, shown if it fails.
    this.global.console = new Console({ stdout: sink, stderr: sink, colorMode: false });
  }

  handleTestEvent(event: Circus.Event): void {
    if (event.name === 'test_start') {
      appendLog(this.logFile, `${TEST_STARTS}${testTitle(namesOf(event.test))}`);
    } else if (event.name === 'test_done') {
      const outcome = event.test.errors.length > 0 ? 'failed' : 'passed';
      const duration = event.test.duration ?? 0;
      appendLog(this.logFile, `${TEST_ENDS}${testTitle(namesOf(event.test))}: ${outcome} (${duration} ms)`);
    }
  }
}

/** The test's describe titles and its own, outermost first (as Jest's results give them). */
function namesOf(test: Circus.TestEntry): string[] {
  const names = [test.name];
  for (let block: Circus.DescribeBlock | undefined = test.parent; block?.parent; block = block.parent) {
    names.unshift(block.name);
  }
  return names;
}
