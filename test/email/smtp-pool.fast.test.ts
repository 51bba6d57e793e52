import { createMailer } from '../../email/mailer';
import { scriptedSmtp } from '../support/scripted-smtp';

/** The scripted SMTP server with the answers these tests need. */
async function rawSmtp(options: { dropDuringData: () => boolean; beforeAccepting?: () => Promise<void> }) {
  const smtp = await scriptedSmtp();
  smtp.state.dropDuringData = options.dropDuringData;
  smtp.state.onMessage = async () => {
    await options.beforeAccepting?.();
    return { reply: '250 queued' };
  };
  return { ...smtp, down: smtp.close };
}

describe('the pooled SMTP transport', () => {
  const message = (n: number) => ({
    to: 'someone@customers.test',
    subject: `receipt ${n}`,
    text: 'thanks',
    messageId: `<receipt-${n}@credits.test>`,
  });

  it('when the SMTP server goes down and comes back, then a send fails meanwhile (not hangs) and the next one after it is delivered', async () => {
    const smtp = await rawSmtp({ dropDuringData: () => false });
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' });
    try {
      await mailer.send(message(1));
      await smtp.down();
      await expect(mailer.send(message(2))).rejects.toThrow();
      await smtp.upAgain();
      await mailer.send(message(3));
      expect(smtp.received.map((data) => /Subject: (receipt \d)/.exec(data)?.[1])).toEqual([
        'receipt 1',
        'receipt 3',
      ]);
    } finally {
      mailer.close();
      await smtp.down().catch(() => {});
    }
  });

  it('when every connection is taken by a message the server holds, then the sends waiting behind it give up and are never sent later', async () => {
    let releaseHeld = () => {};
    const held = new Promise<void>((resolve) => (releaseHeld = resolve));
    const smtp = await rawSmtp({ dropDuringData: () => false, beforeAccepting: () => held });
    const mailer = createMailer({
      smtpUrl: smtp.url,
      from: 'Credits <billing@credits.test>',
      limits: { maxConnections: 1, connectionWaitMs: 200 },
    });
    const subjects = () => smtp.received.map((data) => /Subject: (receipt \d)/.exec(data)?.[1]);
    try {
      const first = mailer.send(message(1));
      const behind = [2, 3, 4].map((n) =>
        mailer.send(message(n)).then(
          () => 'sent',
          (error: Error) => error.message,
        ),
      );
      // Their activities would time out and retry: had they stayed queued, each would go out twice.
      expect(await Promise.all(behind)).toEqual(
        Array(3).fill(expect.stringMatching(/no SMTP connection free/)),
      );
      releaseHeld();
      await first;
      await mailer.send(message(5));
      expect(subjects()).toEqual(['receipt 1', 'receipt 5']);
    } finally {
      mailer.close();
      await smtp.down().catch(() => {});
    }
  });

  it('when the connection drops in the middle of a message, then that send fails (the retry policy sends it again) and the pool recovers', async () => {
    let drop = false;
    const smtp = await rawSmtp({ dropDuringData: () => drop });
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' });
    try {
      await mailer.send(message(1));
      drop = true;
      await expect(mailer.send(message(2))).rejects.toThrow();
      drop = false;
      await mailer.send(message(2));
      expect(smtp.received.map((data) => /Subject: (receipt \d)/.exec(data)?.[1])).toEqual([
        'receipt 1',
        'receipt 2',
      ]);
    } finally {
      mailer.close();
      await smtp.down().catch(() => {});
    }
  });
});
