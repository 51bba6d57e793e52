import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { syncCatalogs } from '../../db/catalog/packs';
import { createSql, type Sql } from '../../db/client';
import { migrate } from '../../db/migrate';
import { SEARCH_ATTRIBUTES } from '../../workflows/shared/search-attributes';
import { appEnv, type AppSettings } from '../chaos/apps';
import { MailSink } from '../chaos/mail-sink';
import { PostgresServer } from '../chaos/postgres-server';
import { openLog, spawnUntilReady, type LogSink } from '../chaos/processes';
import { freePort, stopProcess } from '../local-services';
import { findTemporalCli } from '../temporal-cli';
import { startTemporalOnPostgres } from '../temporal-postgres';

/**
 * Everything one benchmark run measures, each a process of its own on 127.0.0.1 and free ports:
 * PostgreSQL, one Temporal server (the dev server, or the server on PostgreSQL), an SMTP sink,
 * the service's worker and API (their real entry points), the bare-Temporal worker and the direct
 * handler. Logs go to files of the run's directory.
 */

export type Engine = 'dev' | 'postgres';

const ROOT = path.resolve(__dirname, '..', '..');
const WEBHOOK_SECRET = 'whsec_bench_0123456789abcdef';
const API_KEY = 'bench_api_key_0123456789abcdef';
export const SERVICE_TASK_QUEUE = 'credits-billing';
export const BARE_TASK_QUEUE = 'bench-bare';
const START_TIMEOUT_MS = 240_000;

export interface TemporalEngine {
  address: string;
  metricsUrl: string;
  pid(): number | undefined;
  stop(): Promise<void>;
}

async function startDevServer(workDir: string, log: LogSink): Promise<TemporalEngine> {
  const [port, metricsPort] = await Promise.all([freePort(), freePort()]);
  const child = await spawnUntilReady({
    name: 'temporal',
    command: findTemporalCli((line) => log(line)),
    args: [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--metrics-port',
      String(metricsPort),
      '--namespace',
      'default',
      '--headless',
      '--log-level',
      'error',
      // The history file of `npm run dev`: SQLite in WAL mode, synchronous=normal.
      '--db-filename',
      path.join(workDir, 'temporal.db'),
      '--sqlite-pragma',
      'journal_mode=wal',
      '--sqlite-pragma',
      'synchronous=normal',
      ...SEARCH_ATTRIBUTES.flatMap(({ name, cliType }) => ['--search-attribute', `${name}=${cliType}`]),
    ],
    log,
    probe: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok,
    timeoutMs: START_TIMEOUT_MS,
  });
  return {
    address: `127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    pid: () => child.pid,
    stop: () => stopProcess(child),
  };
}

export class BenchStack {
  postgres!: PostgresServer;
  temporal!: TemporalEngine;
  sink!: MailSink;
  settings!: AppSettings;
  sql!: Sql;
  readonly children = new Map<string, ChildProcess>();
  private readonly logs: Array<{ close(): Promise<void> }> = [];

  constructor(
    readonly workDir: string,
    readonly engine: Engine,
    private readonly progress: (line: string) => void,
  ) {
    mkdirSync(this.logDir, { recursive: true });
  }

  get logDir(): string {
    return path.join(this.workDir, 'logs');
  }

  get webhookSecret(): string {
    return WEBHOOK_SECRET;
  }

  get webhookUrl(): string {
    return `http://127.0.0.1:${this.settings.apiPort}/webhooks/stripe`;
  }

  directUrl!: string;

  private log(name: string): LogSink {
    const log = openLog(path.join(this.logDir, `${name}.log`));
    this.logs.push(log);
    return log.sink;
  }

  pidOf(name: string): number | undefined {
    if (name === 'temporal') return this.temporal?.pid();
    if (name === 'postgres') return this.postgresPid;
    return this.children.get(name)?.pid;
  }

  private postgresPid: number | undefined;

  async start(): Promise<void> {
    const [postgresPort, smtpPort, apiPort, directPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const ignoreExit = () => {};
    this.sink = new MailSink(smtpPort, this.log('smtp-sink'), ignoreExit);
    this.postgres = await PostgresServer.init({
      dataDir: path.join(this.workDir, 'postgres'),
      port: postgresPort,
      database: 'credits',
      log: this.log('postgres'),
      onUnexpectedExit: ignoreExit,
    });
    await Promise.all([this.postgres.start(), this.sink.start()]);
    this.postgresPid = readPostmasterPid(path.join(this.workDir, 'postgres'));
    this.progress(`postgres and the SMTP sink are up (ports ${postgresPort}, ${smtpPort})`);

    const temporalLog = this.log('temporal');
    this.temporal =
      this.engine === 'dev'
        ? await startDevServer(this.workDir, temporalLog)
        : await startTemporalOnPostgres({
            postgresUrl: this.postgres.url.replace(/\/credits$/, '/postgres'),
            workDir: path.join(this.workDir, 'temporal'),
            log: temporalLog,
            progress: this.progress,
          });
    this.progress(`temporal (${this.engine}) is up at ${this.temporal.address}`);

    await migrate(this.postgres.url);
    this.sql = createSql(this.postgres.url, { max: 4 });
    await syncCatalogs(this.sql);

    this.settings = {
      databaseUrl: this.postgres.url,
      temporalAddress: this.temporal.address,
      taskQueue: SERVICE_TASK_QUEUE,
      smtpUrl: this.sink.url,
      apiPort,
      webhookSecret: WEBHOOK_SECRET,
      apiKey: API_KEY,
    };
    this.directUrl = `http://127.0.0.1:${directPort}/webhooks/stripe`;
    const env = appEnv(this.settings);
    const node = (file: string) => ['--import', 'tsx', file];
    const launch = async (name: string, start: Parameters<typeof spawnUntilReady>[0]) => {
      this.children.set(
        name,
        await spawnUntilReady({ ...start, onSpawn: (child) => this.children.set(name, child) }),
      );
    };
    await Promise.all([
      launch('worker', {
        name: 'worker',
        command: process.execPath,
        args: [
          ...(process.env.BENCH_PROFILE_DIR
            ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
            : []),
          ...node('worker/main.ts'),
        ],
        spawnOptions: { cwd: ROOT, env: { ...env, LOG_LEVEL: 'info' } },
        log: this.log('worker'),
        readyLine: /"msg":"worker started"/,
        timeoutMs: START_TIMEOUT_MS,
      }),
      launch('api', {
        name: 'api',
        command: process.execPath,
        args: node('api/main.ts'),
        spawnOptions: { cwd: ROOT, env: { ...env, LOG_LEVEL: 'warn' } },
        log: this.log('api'),
        probe: async () =>
          (await fetch(`http://127.0.0.1:${apiPort}/healthz`, { signal: AbortSignal.timeout(1000) })).ok,
        timeoutMs: START_TIMEOUT_MS,
      }),
      launch('bare-worker', {
        name: 'bare-worker',
        command: process.execPath,
        args: node('scripts/bench/bare-worker.ts'),
        spawnOptions: {
          cwd: ROOT,
          env: {
            ...process.env,
            BENCH_TEMPORAL_ADDRESS: this.temporal.address,
            BENCH_TASK_QUEUE: BARE_TASK_QUEUE,
          },
        },
        log: this.log('bare-worker'),
        readyLine: /bare worker started/,
        timeoutMs: START_TIMEOUT_MS,
      }),
      launch('direct', {
        name: 'direct',
        command: process.execPath,
        args: node('scripts/bench/direct-handler.ts'),
        spawnOptions: {
          cwd: ROOT,
          env: {
            ...process.env,
            DATABASE_URL: this.postgres.url,
            STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
            PORT: String(directPort),
          },
        },
        log: this.log('direct'),
        readyLine: /direct handler listening/,
        timeoutMs: START_TIMEOUT_MS,
      }),
    ]);
    this.progress(`worker, API, bare worker and direct handler are up`);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.children.values()].map((child) => stopProcess(child, 15_000)));
    await this.sql?.end({ timeout: 5 }).catch(() => {});
    await Promise.allSettled([this.temporal?.stop(), this.sink?.stop()]);
    await this.postgres?.stop().catch(() => {});
    await Promise.allSettled(this.logs.map((log) => log.close()));
  }

  /** Last resort: the apps and Temporal at once; PostgreSQL by an immediate shutdown. */
  killNow(): void {
    for (const child of this.children.values()) child.kill('SIGKILL');
    const kill = (pid: number | undefined, signal: NodeJS.Signals) => {
      try {
        if (pid !== undefined) process.kill(pid, signal);
      } catch {
        // already gone
      }
    };
    kill(this.temporal?.pid(), 'SIGKILL');
    kill(this.postgresPid, 'SIGQUIT');
  }
}

function readPostmasterPid(dataDir: string): number | undefined {
  try {
    const text = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
    const pid = Number(text.split('\n')[0]);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}
