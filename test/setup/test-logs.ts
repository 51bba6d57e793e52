import { appendFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * Where a test run's logs go, so that a passing run prints its summary and little else: one
 * folder per run under `.data/test-logs/` (git-ignored), or `TEST_LOG_DIR` when it is set. In it,
 * one file per test file (its path under test/, plus `.log`: the service's loggers, the SDK's
 * runtime and core, the processes the file starts, its console), `services.log` (the suite's
 * PostgreSQL and Temporal dev server) and `tool-installs.log` (what an install of a tool printed).
 * The log reporter shows a failing test's part of its file. `TEST_SERVICES_LOG=1` shows
 * everything live instead, as it is printed.
 *
 * Used by the reporter and the global setups (Jest's main process), by the test environment (a
 * Jest worker) and by test support code: it imports nothing but Node.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const TESTS = path.join(ROOT, 'test');
const RUNS = path.join(ROOT, '.data', 'test-logs');
/** The folders of older runs that are kept. */
const RUNS_KEPT = 10;

/** Everything live on the terminal as well, as before logs went to files. */
export const LIVE = process.env.TEST_SERVICES_LOG === '1';

/**
 * This run's folder. The first caller in Jest's main process (the reporter) makes it and sets
 * `TEST_LOG_DIR`, which the global setups and the test workers (started later) inherit.
 */
export function runLogDir(): string {
  const given = process.env.TEST_LOG_DIR;
  const dir = given ? path.resolve(given) : newRunDir();
  if (prepared !== dir) {
    mkdirSync(dir, { recursive: true });
    process.env.TEST_LOG_DIR = dir;
    // A tool installed during the run (stripe-mock built with Go…) says so in one line on the
    // terminal; what the installer prints goes here (scripts/tool-installer.ts).
    if (!LIVE) process.env.TOOL_INSTALL_LOG ??= path.join(dir, 'tool-installs.log');
    prepared = dir;
  }
  return dir;
}

let prepared: string | null = null;

/** 2026-12-06T08-07-18Z-4242 under .data/test-logs/: sorts by time, unique per run. */
function newRunDir(): string {
  const stamp = new Date()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  mkdirSync(RUNS, { recursive: true });
  pruneOlderRuns();
  return path.join(RUNS, `${stamp}-${process.pid}`);
}

/** Leaves room for this run among the ones kept. */
function pruneOlderRuns(): void {
  const runs = readdirSync(RUNS).sort();
  for (const old of runs.slice(0, Math.max(0, runs.length - (RUNS_KEPT - 1)))) {
    rmSync(path.join(RUNS, old), { recursive: true, force: true });
  }
}

/** The log file of one test file: `<run>/credits/grants.test.ts.log` for test/credits/grants.test.ts. */
export function logFileOf(testPath: string): string {
  const relative = path.relative(TESTS, testPath);
  const name = relative.startsWith('..') ? path.basename(testPath) : relative;
  const file = path.join(runLogDir(), `${name}.log`);
  mkdirSync(path.dirname(file), { recursive: true });
  return file;
}

/** The log of the services the global setup starts for the whole suite. */
export function servicesLogFile(): string {
  return path.join(runLogDir(), 'services.log');
}

/** Appends to a log file (and, with `TEST_SERVICES_LOG=1`, to stderr): synchronous, so lines keep their order. */
export function appendLog(file: string, text: string): void {
  const line = text.endsWith('\n') ? text : `${text}\n`;
  appendFileSync(file, line);
  if (LIVE) process.stderr.write(line);
}

/**
 * The lines around each test in its file's log, written by the test environment and read by the
 * reporter: `──▶ describe › test` before it, `──■ describe › test: passed (12 ms)` after it.
 */
export const TEST_STARTS = '──▶ ';
export const TEST_ENDS = '──■ ';

export function testTitle(names: readonly string[]): string {
  return names.join(' › ');
}

/** A path as the terminal shows it: relative to the project when it is inside. */
export function shownPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}
