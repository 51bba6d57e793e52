import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { syncCatalogs } from '../../db/catalog/packs';
import { createSql, type Sql } from '../../db/client';
import { migrate } from '../../db/migrate';
import { freePort } from '../local-services';
import { apiProcess, workerProcess, type AppSettings } from './apps';
import { MailSink } from './mail-sink';
import { PostgresServer } from './postgres-server';
import { openLog, type ExitRecord, type LogSink, type Supervised } from './processes';
import { TemporalServer } from './temporal-server';

/**
 * Every part of the service as a process of its own, on 127.0.0.1 and free ports: PostgreSQL,
 * the Temporal dev server, the SMTP sink, the worker and the API. Each writes its log to a file
 * of the run's directory. Stopping goes apps first, then the servers they use.
 */

const DATABASE = 'credits';
const WEBHOOK_SECRET = 'whsec_chaos_0123456789abcdef';
const API_KEY = 'chaos_api_key_0123456789abcdef';

/** Like Promise.all, but waits for every start to end, so that nothing is left starting. */
async function settleAll(starts: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(starts)).flatMap((result) =>
    result.status === 'rejected' ? [result.reason as Error] : [],
  );
  if (failed.length > 0) throw new Error(failed.map((error) => error.message).join('; '));
}

export class ChaosStack {
  readonly unexpectedExits: ExitRecord[] = [];
  private readonly logs: Array<{ close(): Promise<void> }> = [];
  private readonly all: Supervised[] = [];
  postgres!: PostgresServer;
  temporal!: TemporalServer;
  sink!: MailSink;
  worker!: Supervised;
  api!: Supervised;
  settings!: AppSettings;
  /** The driver's own connection, for setup and the final checks. */
  sql!: Sql;

  constructor(
    readonly workDir: string,
    private readonly progress: (line: string) => void,
  ) {
    mkdirSync(this.logDir, { recursive: true });
  }

  get logDir(): string {
    return path.join(this.workDir, 'logs');
  }

  get webhookUrl(): string {
    return `http://127.0.0.1:${this.settings.apiPort}/webhooks/stripe`;
  }

  private log(name: string): LogSink {
    const log = openLog(path.join(this.logDir, `${name}.log`));
    this.logs.push(log);
    return log.sink;
  }

  private readonly onUnexpectedExit = (record: ExitRecord) => {
    this.unexpectedExits.push(record);
    this.progress(`${record.name} exited on its own (${record.how}); restarting it, as a supervisor would`);
  };

  async start(): Promise<void> {
    const [postgresPort, temporalPort, smtpPort, apiPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    this.temporal = new TemporalServer({
      port: temporalPort,
      dbFile: path.join(this.workDir, 'temporal.db'),
      namespace: 'default',
      log: this.log('temporal'),
      onUnexpectedExit: this.onUnexpectedExit,
    });
    this.sink = new MailSink(smtpPort, this.log('smtp-sink'), this.onUnexpectedExit);
    this.postgres = await PostgresServer.init({
      dataDir: path.join(this.workDir, 'postgres'),
      port: postgresPort,
      database: DATABASE,
      log: this.log('postgres'),
      onUnexpectedExit: this.onUnexpectedExit,
    });
    this.all.push(this.temporal.process, this.sink.process, this.postgres.process);
    await settleAll([this.postgres.start(), this.temporal.start(), this.sink.start()]);
    const postgres = this.postgres;
    this.progress(
      `postgres, temporal and the SMTP sink are up (ports ${postgresPort}, ${temporalPort}, ${smtpPort})`,
    );

    await migrate(postgres.url);
    this.sql = createSql(postgres.url, { max: 4 });
    await syncCatalogs(this.sql);

    this.settings = {
      databaseUrl: postgres.url,
      temporalAddress: this.temporal.address,
      taskQueue: 'credits-billing',
      smtpUrl: this.sink.url,
      apiPort,
      webhookSecret: WEBHOOK_SECRET,
      apiKey: API_KEY,
    };
    this.worker = workerProcess(this.settings, this.log('worker'), this.onUnexpectedExit);
    this.api = apiProcess(this.settings, this.log('api'), this.onUnexpectedExit);
    this.all.push(this.worker, this.api);
    await settleAll([this.worker.start(), this.api.start()]);
    this.progress(`worker and API are up (API on port ${apiPort})`);
  }

  /** Apps first (they use the servers), then Temporal, the sink and PostgreSQL. */
  async stop(): Promise<void> {
    for (const process of this.all) process.markStopping();
    await Promise.allSettled([this.worker?.stop(), this.api?.stop()]);
    await this.sql?.end({ timeout: 5 }).catch(() => {});
    await Promise.allSettled([this.temporal?.stop(), this.sink?.stop()]);
    await this.postgres?.stop().catch(() => {});
    await Promise.allSettled(this.logs.map((log) => log.close()));
  }

  /** Last resort (this script exiting abruptly). */
  killNow(): void {
    for (const process of this.all) process.killNow();
  }
}
