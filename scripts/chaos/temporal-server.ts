import { startTemporalDevServer } from '../local-services';
import { sleep, Supervised, type ExitRecord, type LogSink } from './processes';

/**
 * The Temporal dev server for the chaos run. Its history lives in a SQLite file, so that a
 * restart (kill -9, then start on the same file and port) finds every workflow where it was.
 */
export class TemporalServer {
  readonly address: string;
  readonly process: Supervised;

  constructor(options: {
    port: number;
    dbFile: string;
    namespace: string;
    log: LogSink;
    onUnexpectedExit: (record: ExitRecord) => void;
  }) {
    this.address = `127.0.0.1:${options.port}`;
    const launch = async () =>
      (
        await startTemporalDevServer({
          port: options.port,
          dbFile: options.dbFile,
          namespace: options.namespace,
          log: options.log,
        })
      ).process;
    this.process = new Supervised('temporal', launch, options.log, options.onUnexpectedExit);
  }

  start(): Promise<void> {
    return this.process.start();
  }

  /** A crash of the server (kill -9), a pause, and a start on the same history. */
  async restart(pauseMs: number): Promise<{ goneAt: number }> {
    await this.process.signal('SIGKILL');
    const goneAt = Date.now();
    await sleep(pauseMs);
    await this.process.start();
    return { goneAt };
  }

  stop(): Promise<void> {
    return this.process.stop('SIGTERM', 10_000);
  }
}
