import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** How a scripted server answers one message. */
export interface Answer {
  /** The reply to the message's DATA, or null to drop the connection unanswered. */
  reply: string | null;
  /** Runs once the reply is written. */
  after?: () => void;
}

/**
 * An SMTP server that speaks just enough of the protocol and lets each test decide the answer
 * to every message, whether new connections are greeted at all, and whether a connection drops
 * in the middle of a message's DATA. It can go down and come back on the same port.
 */
export async function scriptedSmtp() {
  const received: string[] = [];
  const accepted: string[] = [];
  const sockets = new Set<Socket>();
  const state = {
    /** When set, a new connection is accepted and never spoken to. */
    silent: false,
    /** Asked for each chunk of a message's DATA: true drops the connection there. */
    dropDuringData: (): boolean => false,
    onMessage: (_data: string): Answer | Promise<Answer> => ({ reply: '250 queued' }),
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (state.silent) return;
    let inData = false;
    let buffer = '';
    socket.write('220 scripted ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (inData) {
        if (state.dropDuringData()) return void socket.destroy();
        const end = buffer.indexOf('\r\n.\r\n');
        if (end < 0) return;
        const data = buffer.slice(0, end);
        buffer = buffer.slice(end + 5);
        inData = false;
        received.push(data);
        void Promise.resolve(state.onMessage(data)).then(({ reply, after }) => {
          if (reply === null) socket.destroy();
          else {
            if (reply.startsWith('250')) accepted.push(data);
            socket.write(`${reply}\r\n`);
          }
          after?.();
        });
      }
      for (let line = buffer.indexOf('\r\n'); line >= 0 && !inData; line = buffer.indexOf('\r\n')) {
        const command = buffer.slice(0, line).toUpperCase();
        buffer = buffer.slice(line + 2);
        if (command.startsWith('EHLO') || command.startsWith('HELO'))
          socket.write('250-scripted\r\n250 8BITMIME\r\n');
        else if (command.startsWith('MAIL') || command.startsWith('RCPT') || command.startsWith('RSET'))
          socket.write('250 ok\r\n');
        else if (command.startsWith('DATA')) {
          inData = true;
          socket.write('354 go on\r\n');
        } else if (command.startsWith('QUIT')) socket.end('221 bye\r\n');
        else if (command.startsWith('NOOP')) socket.write('250 ok\r\n');
        else socket.write('502 no\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    state,
    /** The DATA of every message received, answered or not. */
    received,
    /** The DATA of every message sent to the address, answered or not. */
    receivedFor: (address: string) => received.filter((data) => data.includes(address)),
    /** The messages to the address the server accepted (answered 250). */
    acceptedFor: (address: string) => accepted.filter((data) => data.includes(address)),
    /** Ends the connections that were never greeted. */
    dropSilentConnections() {
      for (const socket of sockets) if (socket.bytesWritten === 0) socket.destroy();
    },
    /** Drops every connection and stops listening. */
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    /** Listens again on the same port. */
    async upAgain() {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
  };
}
export type ScriptedSmtp = Awaited<ReturnType<typeof scriptedSmtp>>;
