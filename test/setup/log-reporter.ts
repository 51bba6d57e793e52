import type { Reporter, Test, TestResult } from '@jest/reporters';
import { existsSync, readFileSync } from 'node:fs';
import { TEST_ENDS, TEST_STARTS, logFileOf, runLogDir, shownPath, testTitle } from './test-logs';

/** How much of a failing test's log is shown: its last lines, each cut to a readable width. */
const SHOWN_LINES = 40;
const SHOWN_WIDTH = 400;

/**
 * Shows the logs of a failing test next to its failure: the path of its file's log and the last
 * lines logged while the test ran (or, when no test ran, the end of the file). A passing run
 * gets one line: where the logs are. Listed after Jest's default reporter, so it prints after it.
 */
export default class LogReporter implements Pick<Reporter, 'onRunStart' | 'onTestResult'> {
  private readonly dir = runLogDir();

  onTestResult(test: Test, result: TestResult): void {
    const failed = result.testResults.filter((t) => t.status === 'failed');
    if (failed.length === 0 && !result.testExecError) return;
    const file = logFileOf(test.path);
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
    if (lines.at(-1) === '') lines.pop();
    const out = [`\n  Log of ${shownPath(test.path)}: ${shownPath(file)}`];
    const shown = new Set<string>();
    for (const { ancestorTitles, title } of failed) {
      const name = testTitle([...ancestorTitles, title]);
      const section = shown.has(name) ? null : sectionOf(lines, name);
      if (!section) continue;
      shown.add(name);
      out.push(...excerpt(`for "${name}", its hooks included`, section));
    }
    // A file that failed outside its tests (a beforeAll, a teardown, loading it): its last lines.
    if (shown.size === 0) out.push(...excerpt('at the end of the file', lines));
    process.stderr.write(`${out.join('\n')}\n\n`);
  }

  /** Said first, so that the logs can be followed while the run goes on. */
  onRunStart(): void {
    process.stderr.write(`Logs of this run: ${shownPath(this.dir)}\n`);
  }
}

/**
 * The lines of a test: from the end of the test before it (so its hooks' lines are included, a
 * failing beforeAll's too) to its own end, or to the end of the file if it never ended.
 */
function sectionOf(lines: string[], name: string): string[] | null {
  const start = lines.lastIndexOf(`${TEST_STARTS}${name}`);
  if (start < 0) return null;
  let from = start;
  while (from > 0 && !lines[from - 1]?.startsWith(TEST_ENDS)) from -= 1;
  const end = lines.findIndex((line, i) => i > start && line.startsWith(`${TEST_ENDS}${name}: `));
  return lines.slice(from, end < 0 ? lines.length : end);
}

function excerpt(when: string, lines: string[]): string[] {
  if (lines.length === 0) return [`  ── nothing was logged ${when}`];
  const tail = lines.slice(-SHOWN_LINES);
  const heading =
    tail.length === lines.length
      ? `  ── logged ${when}:`
      : `  ── the last ${tail.length} of ${lines.length} lines logged ${when}:`;
  return [
    heading,
    ...tail.map(
      (line) => `    │ ${line.length > SHOWN_WIDTH ? `${line.slice(0, SHOWN_WIDTH)}… (cut)` : line}`,
    ),
  ];
}
