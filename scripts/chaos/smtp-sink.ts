import { SMTPServer } from 'smtp-server';
import { REFUSAL_STAGES, type RefusalStage, type SinkCommand, type SinkReport } from './smtp-sink-protocol';

/**
 * The SMTP server of the chaos run, in a process of its own (started by mail-sink.ts with an IPC
 * channel). It accepts every message and reports it to the driver before answering 250, so the
 * driver counts exactly what the service handed over. While told to refuse, it answers with
 * transient errors, at the greeting (421), at RCPT TO (451) and after DATA (451) in turn, so the
 * outbox has to retry every way a real server can say "later".
 *
 *   node --import tsx scripts/chaos/smtp-sink.ts <port>
 */

const port = Number(process.argv[2] ?? '0');
let refusing = false;
let refusals = 0;

function report(message: SinkReport): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/** The stage at which this connection is refused, if the sink refuses now (decided on connect). */
const refusalOf = new WeakMap<object, RefusalStage>();

function transient(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

function headerValue(raw: string, name: string): string | null {
  const headers = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const match = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(headers);
  return match?.[1]?.replace(/\r?\n[ \t]+/g, ' ').trim() ?? null;
}

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  // Many workers' attempts at once during a refusal window; never the limit here.
  maxClients: 1000,
  onConnect: (session, callback) => {
    if (!refusing) return callback();
    const stage = REFUSAL_STAGES[refusals % REFUSAL_STAGES.length] ?? 'connect';
    refusals += 1;
    if (stage !== 'connect') {
      refusalOf.set(session, stage);
      return callback();
    }
    void report({ type: 'refused', stage, at: Date.now() });
    return callback(transient(421, 'Service not available, closing transmission channel'));
  },
  // A pooled client sends many messages over one connection: while the sink refuses, each is
  // refused (at RCPT TO or after DATA) whenever its connection was opened; after, accepted again.
  onMailFrom: (_address, session, callback) => {
    if (!refusing) {
      refusalOf.delete(session);
    } else if (!refusalOf.has(session)) {
      refusalOf.set(session, refusals % 2 === 0 ? 'rcpt' : 'data');
      refusals += 1;
    }
    return callback();
  },
  onRcptTo: (_address, session, callback) => {
    if (refusalOf.get(session) !== 'rcpt') return callback();
    void report({ type: 'refused', stage: 'rcpt', at: Date.now() });
    return callback(transient(451, 'Requested action aborted: local error in processing'));
  },
  onData: (stream, session, callback) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (error) => callback(error));
    stream.on('end', () => {
      if (refusalOf.get(session) === 'data') {
        void report({ type: 'refused', stage: 'data', at: Date.now() });
        return callback(transient(451, 'Requested action aborted: try again later'));
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      const to = session.envelope.rcptTo.map((address) => address.address).join(', ');
      void report({ type: 'accepted', messageId: headerValue(raw, 'message-id'), to, at: Date.now() }).then(
        () => callback(),
      );
    });
  },
});

process.on('message', (command: SinkCommand) => {
  if (command.type === 'refuse') refusing = command.on;
});
// The driver is gone: nothing would count what arrives, so stop.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

server.on('error', (error) => process.stderr.write(`smtp sink: ${error.message}\n`));
server.listen(port, '127.0.0.1', () => {
  const address = server.server.address();
  void report({ type: 'listening', port: typeof address === 'object' && address ? address.port : port });
});
