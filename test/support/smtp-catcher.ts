import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { waitUntil } from './wait';

export interface CaughtMail {
  to: string;
  subject: string;
  text: string;
  messageId: string | null;
}

/**
 * A real SMTP server on 127.0.0.1 that keeps what it receives. It can be taken down and brought
 * back on the same port, or made to refuse recipients permanently, to test delivery failures.
 */
export class SmtpCatcher {
  readonly messages: CaughtMail[] = [];
  private server: SMTPServer | null = null;
  private rejectCode: number | null = null;
  port = 0;

  static async start(): Promise<SmtpCatcher> {
    const catcher = new SmtpCatcher();
    await catcher.up();
    return catcher;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Answers every recipient with this permanent error code (e.g. 550), or accepts again (null). */
  refuseRecipients(code: number | null): void {
    this.rejectCode = code;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo: (_address, _session, callback) => {
        if (this.rejectCode === null) return callback();
        const error = Object.assign(new Error('mailbox unavailable'), { responseCode: this.rejectCode });
        return callback(error);
      },
      onData: (stream, _session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            const to = Array.isArray(mail.to) ? mail.to.map((a) => a.text).join(', ') : (mail.to?.text ?? '');
            this.messages.push({
              to,
              subject: mail.subject ?? '',
              text: mail.text ?? '',
              messageId: mail.messageId ?? null,
            });
            callback();
          })
          .catch((error: Error) => callback(error));
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.server = server;
  }

  /** Stops listening; connection attempts are refused until `up()`. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  to(address: string): CaughtMail[] {
    return this.messages.filter((message) => message.to.includes(address));
  }

  /**
   * Waits for `count` mails to the address, then for a quiet period in which no more arrive (a
   * late duplicate would show up here), and answers every mail to it.
   */
  async settledMail(address: string, count = 1, quietMs = 400): Promise<CaughtMail[]> {
    await this.waitForMail(address, count);
    for (let seen = this.to(address).length; ; seen = this.to(address).length) {
      await new Promise((resolve) => setTimeout(resolve, quietMs));
      if (this.to(address).length === seen) return this.to(address);
    }
  }

  async waitForMail(address: string, count = 1, timeoutMs = 30_000): Promise<CaughtMail[]> {
    await waitUntil(() => this.to(address).length >= count, {
      timeoutMs,
      what: `${count} mail(s) to ${address}`,
    });
    return this.to(address);
  }
}
