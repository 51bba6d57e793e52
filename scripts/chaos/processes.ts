import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import readline from 'node:readline';

/**
 * The chaos run's processes: each part of the service is a real child process, started by a
 * launch function (which resolves once the process is ready), killed and restarted on purpose,
 * and restarted like a process supervisor would if it ever exits on its own. Such an exit is
 * recorded: the run reports it.
 */

export type LogSink = (text: string) => void;

/** Appends to a log file; every line the process writes, and what was done to it. */
export function openLog(file: string): { sink: LogSink; close(): Promise<void> } {
  const stream: WriteStream = createWriteStream(file, { flags: 'a' });
  return {
    sink: (text) => {
      stream.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    close: () => new Promise((resolve) => stream.end(() => resolve())),
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export function exitOf(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Spawns a process whose output goes to the log, and resolves once `ready` says so: a line it
 * prints, or a probe that succeeds. Rejects if it exits first or takes longer than the timeout
 * (the process is then killed).
 */
export async function spawnUntilReady(options: {
  name: string;
  command: string;
  args: string[];
  spawnOptions?: SpawnOptions;
  log: LogSink;
  readyLine?: RegExp;
  probe?: () => Promise<boolean>;
  timeoutMs: number;
  /** Told of the process as soon as it exists, so that it can be stopped while it starts. */
  onSpawn?: (child: ChildProcess) => void;
}): Promise<ChildProcess> {
  const child = spawn(options.command, options.args, {
    ...options.spawnOptions,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches this script only, which then
    // stops everything in order.
    detached: true,
  });
  options.onSpawn?.(child);
  options.log(`--- ${new Date().toISOString()} ${options.name} started (pid ${child.pid ?? '?'})`);
  let sawReadyLine = false;
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      options.log(line);
      if (options.readyLine?.test(line)) sawReadyLine = true;
    });
  }
  const exited = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`${options.name} exited while starting (${signal ?? `code ${String(code)}`})`)),
    );
  });
  exited.catch(() => {});
  const ready = (async () => {
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      if (!isRunning(child)) return;
      const probed = options.probe ? await options.probe().catch(() => false) : true;
      if ((options.readyLine === undefined || sawReadyLine) && probed) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${options.name} was not ready within ${options.timeoutMs} ms`);
      }
      await sleep(100);
    }
  })();
  await Promise.race([ready, exited]);
  return child;
}

export interface ExitRecord {
  at: number;
  name: string;
  how: string;
}

/** One part of the stack: started, killed, restarted; restarted after an exit nobody asked for. */
/** Starts a process; calls `onSpawn` as soon as the process exists, resolves once it is ready. */
export type Launch = (onSpawn: (child: ChildProcess) => void) => Promise<ChildProcess>;

export class Supervised {
  private child: ChildProcess | null = null;
  /** A process still starting (not ready yet). */
  private launching: ChildProcess | null = null;
  /** The last start, settled or not. */
  private starting: Promise<void> = Promise.resolve();
  private expectingExit = false;
  private stopped = false;
  private restarting: Promise<void> | null = null;

  constructor(
    readonly name: string,
    private readonly launch: Launch,
    private readonly log: LogSink,
    private readonly onUnexpectedExit: (record: ExitRecord) => void,
  ) {}

  async start(): Promise<void> {
    const starting = this.startOnce();
    this.starting = starting.catch(() => {});
    return starting;
  }

  private async startOnce(): Promise<void> {
    let child: ChildProcess;
    try {
      child = await this.launch((spawned) => {
        this.launching = spawned;
      });
    } finally {
      this.launching = null;
    }
    if (this.stopped) {
      child.kill('SIGKILL');
      throw new Error(`${this.name} started after the run stopped`);
    }
    this.child = child;
    this.expectingExit = false;
    const watch = (code: number | null, signal: NodeJS.Signals | null) => this.exited(child, code, signal);
    if (isRunning(child)) child.once('exit', watch);
    else watch(child.exitCode, child.signalCode);
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child || this.expectingExit || this.stopped) return;
    const how = signal ?? `code ${String(code)}`;
    this.log(`--- ${new Date().toISOString()} ${this.name} exited on its own (${how})`);
    this.onUnexpectedExit({ at: Date.now(), name: this.name, how });
    this.restarting = this.restartAfterCrash().finally(() => {
      this.restarting = null;
    });
  }

  /** As a supervisor would: again after a second, until it starts or the run stops. */
  private async restartAfterCrash(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt += 1) {
      await sleep(Math.min(1000 * attempt, 5000));
      if (this.stopped) return;
      try {
        await this.start();
        return;
      } catch (error) {
        this.log(`--- ${this.name} restart failed: ${(error as Error).message}`);
      }
    }
  }

  /** The running process's ID, if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The run is ending: an exit from now on is expected, and nothing is restarted. */
  markStopping(): void {
    this.stopped = true;
  }

  /** Sends the signal and waits for the process to be gone (SIGKILL past the grace period). */
  async signal(signal: NodeJS.Signals, graceMs = 30_000): Promise<void> {
    await this.restarting;
    const child = this.child;
    if (!child || !isRunning(child)) return;
    this.expectingExit = true;
    this.log(`--- ${new Date().toISOString()} ${this.name}: ${signal}`);
    const gone = exitOf(child);
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /** The end of the run: stop for good, politely first. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
    this.stopped = true;
    // One still starting is of no use any more: gone at once (its start then fails).
    const starting = this.launching;
    if (starting && isRunning(starting)) {
      const gone = exitOf(starting);
      starting.kill('SIGKILL');
      await gone;
    }
    // A launch that does not say what it spawned is waited for, then stopped below.
    await this.starting;
    await this.restarting?.catch(() => {});
    await this.signal(signal, graceMs);
  }

  /** Last resort when this script exits: nothing it started may outlive it. */
  killNow(): void {
    this.stopped = true;
    if (this.launching && isRunning(this.launching)) this.launching.kill('SIGKILL');
    if (this.child && isRunning(this.child)) this.child.kill('SIGKILL');
  }
}
