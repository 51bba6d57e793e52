import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { Supervised, type ExitRecord, type LogSink } from './processes';
import type { RefusalStage, SinkCommand, SinkReport } from './smtp-sink-protocol';

/**
 * The driver's side of the SMTP sink: starts smtp-sink.ts as a child process, switches its
 * refusals on and off, and keeps every message it accepted (Message-ID and when), which is what
 * the receipt checks count.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const SINK = path.join(__dirname, 'smtp-sink.ts');

export interface AcceptedMail {
  messageId: string | null;
  to: string;
  at: number;
}

export class MailSink {
  readonly accepted: AcceptedMail[] = [];
  readonly refusals: Record<RefusalStage, number> = { connect: 0, rcpt: 0, data: 0 };
  readonly process: Supervised;
  private child: ChildProcess | null = null;
  private refusing = false;

  constructor(
    readonly port: number,
    log: LogSink,
    onUnexpectedExit: (record: ExitRecord) => void,
  ) {
    this.process = new Supervised('smtp-sink', (onSpawn) => this.launch(log, onSpawn), log, onUnexpectedExit);
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  private launch(log: LogSink, onSpawn: (child: ChildProcess) => void): Promise<ChildProcess> {
    const child = fork(SINK, [String(this.port)], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    onSpawn(child);
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) readline.createInterface({ input: stream }).on('line', log);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the SMTP sink did not start within 60 s'));
      }, 60_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the SMTP sink exited while starting (code ${String(code)})`));
      });
      child.on('message', (message: SinkReport) => {
        if (message.type === 'listening') {
          clearTimeout(timer);
          this.child = child;
          // A restarted sink takes up where the last one was.
          this.send({ type: 'refuse', on: this.refusing });
          resolve(child);
        } else if (message.type === 'accepted') {
          this.accepted.push({ messageId: message.messageId, to: message.to, at: message.at });
        } else {
          this.refusals[message.stage] += 1;
        }
      });
    });
  }

  private send(command: SinkCommand): void {
    if (this.child?.connected) this.child.send(command);
  }

  /** Transient refusals (421/451) from now on, or acceptance again. */
  refuse(on: boolean): void {
    this.refusing = on;
    this.send({ type: 'refuse', on });
  }

  start(): Promise<void> {
    return this.process.start();
  }

  stop(): Promise<void> {
    return this.process.stop('SIGTERM', 5_000);
  }
}
