import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { syncCatalogs } from '../../../db/catalog/packs';
import { createSql, type Sql } from '../../../db/client';
import { migrate } from '../../../db/migrate';
import { PostgresServer } from '../../chaos/postgres-server';
import { openLog, spawnUntilReady, type LogSink } from '../../chaos/processes';
import { freePort, stopProcess } from '../../local-services';

/**
 * What `npm run bench:usage` measures on: one PostgreSQL (its own, with the settings of `npm run
 * dev`'s, or one given by URL) and the service's API as a process of its own (its real entry
 * point). The raw floors talk to the same PostgreSQL through postgres.js. No Temporal: nothing
 * measured here waits on it (no threshold is set, so no movement asks for a follow-up).
 */

const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BENCH_API_KEY = 'bench_usage_key_0123456789abcdef';

export interface UsageBenchStackOptions {
  workDir: string;
  /** Measure on this database instead of starting one. */
  databaseUrl: string | null;
  /** Flush at each commit, as `npm run dev`'s PostgreSQL does. */
  fsync: boolean;
  /** Write a V8 CPU profile of the API process into this folder when it stops. */
  profileDir: string | null;
  progress: (line: string) => void;
}

export class UsageBenchStack {
  postgres: PostgresServer | null = null;
  api: ChildProcess | null = null;
  sql!: Sql;
  databaseUrl!: string;
  apiUrl!: string;
  private readonly logs: Array<{ close(): Promise<void> }> = [];

  constructor(private readonly options: UsageBenchStackOptions) {
    mkdirSync(path.join(options.workDir, 'logs'), { recursive: true });
  }

  private log(name: string): LogSink {
    const log = openLog(path.join(this.options.workDir, 'logs', `${name}.log`));
    this.logs.push(log);
    return log.sink;
  }

  async start(): Promise<void> {
    if (this.options.databaseUrl) {
      this.databaseUrl = this.options.databaseUrl;
    } else {
      this.postgres = await PostgresServer.init({
        dataDir: path.join(this.options.workDir, 'postgres'),
        port: await freePort(),
        database: 'credits',
        log: this.log('postgres'),
        onUnexpectedExit: () => {},
        fsync: this.options.fsync,
        // Statement statistics for the profile the report prints.
        settings: ['shared_preload_libraries=pg_stat_statements', 'max_connections=200'],
      });
      await this.postgres.start();
      this.databaseUrl = this.postgres.url;
    }
    await migrate(this.databaseUrl);
    this.sql = createSql(this.databaseUrl, { max: 24 });
    await syncCatalogs(this.sql);
    await this.sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`.catch(() => {});
    this.options.progress(
      `PostgreSQL ready (${this.postgres ? 'own' : 'given'}, fsync ${this.options.fsync ? 'on' : 'off'})`,
    );

    const port = await freePort();
    this.apiUrl = `http://127.0.0.1:${port}`;
    const profile = this.options.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${this.options.profileDir}`]
      : [];
    this.api = await spawnUntilReady({
      name: 'api',
      command: process.execPath,
      args: [...profile, '--import', 'tsx', 'api/main.ts'],
      spawnOptions: {
        cwd: ROOT,
        env: {
          ...process.env,
          NODE_ENV: 'development',
          LOG_LEVEL: 'warn',
          DATABASE_URL: this.databaseUrl,
          // Never dialled: nothing measured here starts a workflow (the client connects lazily).
          TEMPORAL_ADDRESS: '127.0.0.1:9',
          BILLING_API_KEYS: BENCH_API_KEY,
          PORT: String(port),
          HOST: '127.0.0.1',
        },
      },
      log: this.log('api'),
      probe: async () => (await fetch(`${this.apiUrl}/healthz`, { signal: AbortSignal.timeout(1000) })).ok,
      timeoutMs: 120_000,
    });
    this.options.progress(`API process up at ${this.apiUrl}`);
  }

  /** The PIDs whose CPU the report shows. */
  pids(): Record<string, () => number | undefined> {
    return {
      api: () => this.api?.pid,
      ...(this.postgres ? { postgres: () => this.postgres?.process.pid } : {}),
    };
  }

  async stop(): Promise<void> {
    if (this.api) await stopProcess(this.api, 15_000);
    await this.sql?.end({ timeout: 5 }).catch(() => {});
    await this.postgres?.stop().catch(() => {});
    await Promise.allSettled(this.logs.map((log) => log.close()));
  }
}
