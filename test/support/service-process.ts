import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { stopProcess } from '../../scripts/local-services';
import { logOutputOf } from './test-log';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * A process of the service (`worker/main.ts`, `api/main.ts`) run as production runs it: its own
 * Node process (tsx as a loader, so a signal reaches the service itself, not a launcher), its own
 * database pool. An error that escapes every promise ends such a process, where inside the test
 * runner it would only fail a test; `assertRunning` says so with the process's last output. All
 * it prints also goes to the test file's log, each line marked with its name.
 */
export class ServiceProcess {
  private output = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly child: ChildProcess;

  constructor(
    readonly name: string,
    entry: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    logOutputOf(this.child, name);
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-16_000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.child.once('exit', (code, signal) => {
      this.exit = { code, signal };
    });
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Everything it printed lately (the last 16 kB). */
  get log(): string {
    return this.output;
  }

  assertRunning(): void {
    if (this.exit) {
      throw new Error(
        `the ${this.name} process exited (code ${String(this.exit.code)}, signal ${String(this.exit.signal)}); ` +
          `its last output:\n${this.output}`,
      );
    }
  }

  /** Waits until its output matches, failing early if it exits. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      this.assertRunning();
      if (Date.now() > deadline) {
        throw new Error(
          `the ${this.name} process printed nothing matching ${String(pattern)}:\n${this.output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  stop(): Promise<void> {
    return stopProcess(this.child);
  }

  /** SIGKILL: the process ends where it stands, nothing of its own shutdown runs. */
  async kill(): Promise<void> {
    if (this.exit) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** What an API process answered: its status and its body, parsed. */
export interface ApiAnswer {
  status: number;
  /** Any: a test reads whichever field it asserts on. */
  body: any;
}

/** A JSON request to an API process the test started itself, sent as a client sends it. */
export async function callApi(
  apiUrl: string,
  apiKey: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const response = await fetch(`${apiUrl}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${apiKey}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}
