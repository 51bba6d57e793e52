import nodemailer from 'nodemailer';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** Stable per outbox row, so a receiving server can discard a repeat. */
  messageId: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<{ messageId: string }>;
  close(): void;
}

/** An SMTP failure that retrying cannot fix (5xx reply: unknown mailbox, rejected sender…). */
export function isPermanentSmtpError(error: unknown): boolean {
  const code = (error as { responseCode?: unknown } | null)?.responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/** Waits bounded so that a send the caller gave up on is never handed to SMTP later. */
export interface MailerLimits {
  /** Connections kept open, and so messages on the wire at once. */
  maxConnections: number;
  /** How long a message waits for a free connection before it fails (and its activity retries). */
  connectionWaitMs: number;
}

const DEFAULT_LIMITS: MailerLimits = { maxConnections: 5, connectionWaitMs: 5_000 };

export function createMailer(options: { smtpUrl: string; from: string; limits?: MailerLimits }): Mailer {
  const limits = options.limits ?? DEFAULT_LIMITS;
  // Pooled: a receipt reuses an open connection instead of a TCP connect, greeting and EHLO of
  // its own. A connection the server closed (idle, restarted, down) leaves the pool and the next
  // message opens a new one. Each send is one try (no requeue inside the pool): the activity's
  // retry policy is the one place that retries, with its backoff and deadline.
  const transport = nodemailer.createTransport(
    {
      url: options.smtpUrl,
      pool: true,
      maxConnections: limits.maxConnections,
      maxRequeues: 0,
      // Closed by us well before the socket timeout or a server's own idle limit.
      idleTimeout: 10_000,
      // Bounded waits: a hung server must fail the attempt so the retry policy can take over.
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    },
    { from: options.from },
  );
  // The pool's own queue has no deadline: a message queued behind a hung server would still go
  // out after its activity timed out and a retry sent it again. So at most one message per
  // connection reaches the pool, and the rest wait here, for a bounded time.
  const gate = new ConnectionGate(limits.maxConnections, limits.connectionWaitMs);
  return {
    async send(message) {
      const release = await gate.enter();
      try {
        await transport.sendMail({
          to: message.to,
          subject: message.subject,
          text: message.text,
          messageId: message.messageId,
        });
      } finally {
        release();
      }
      return { messageId: message.messageId };
    },
    close() {
      gate.close();
      transport.close();
    },
  };
}

/** A counting semaphore whose waiters give up after `waitMs`, never entering late. */
class ConnectionGate {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(
    slots: number,
    private readonly waitMs: number,
  ) {
    this.free = slots;
  }

  enter(): Promise<() => void> {
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const admit = () => {
        clearTimeout(timer);
        resolve(this.releaser());
      };
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(admit);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(new Error(`no SMTP connection free within ${this.waitMs} ms`));
      }, this.waitMs);
      this.waiting.push(admit);
    });
  }

  close(): void {
    this.waiting.length = 0;
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}
