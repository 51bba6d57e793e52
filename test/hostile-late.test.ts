import { MockActivityEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createEmailActivities } from '../activities/email/email';
import type { Mailer } from '../email/mailer';
import { createAccount } from '../credits/accounts';
import { createSql, type Sql } from '../db/client';
import { createGrant } from '../credits/grants';
import { enqueueEmail } from '../db/email/outbox';
import { failTopup, findTopupSettings, grantTopup, saveTopupSettings } from '../db/topups/topups';
import type { PaymentIntentSummary } from '../stripe/payment-intent';
import { TEST_OUTBOX_AGES } from './support/harness';

const silent = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

describe('automatic top-up after a failure whose charge outcome was unknown', () => {
  let sql: Sql;
  beforeAll(() => {
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 5 });
  });
  afterAll(async () => {
    await sql?.end();
  });

  async function account() {
    const accountId = `acct_${randomUUID()}`;
    await createAccount(sql, { id: accountId, email: `${accountId}@customers.test` });
    await saveTopupSettings(sql, accountId, {
      enabled: true,
      threshold: 300,
      packId: null,
      credits: 100,
      amountCents: 900,
      currency: 'usd',
      monthlyCapCents: 100_000,
      maxConsecutiveFailures: 3,
    });
    return accountId;
  }

  async function openTopup(accountId: string) {
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO topups (account_id, credits, amount_cents, currency, month)
      VALUES (${accountId}, 100, 900, 'usd', date_trunc('month', now() AT TIME ZONE 'UTC')::date)
      RETURNING id`;
    // Disarmed, as the crossing that opens a top-up leaves it.
    await sql`UPDATE topup_settings SET armed = false WHERE account_id = ${accountId}`;
    return (row as { id: string }).id;
  }

  const fail = (topupId: string, code: string) =>
    failTopup(sql, { topupId, workflowId: `topup:${topupId}`, code, message: code, recoveryUrl: null });

  function intent(topupId: string, accountId: string, status: string): PaymentIntentSummary {
    return {
      id: `pi_${topupId.replace('topup_', '')}`,
      status,
      amount: 900,
      amountReceived: status === 'succeeded' ? 900 : 0,
      currency: 'usd',
      livemode: false,
      customerId: null,
      topupId,
      accountId,
      failureCode: status === 'succeeded' ? null : 'card_declined',
      failureMessage: status === 'succeeded' ? null : 'Your card was declined.',
    };
  }

  const late = (topupId: string, accountId: string, status: string) =>
    grantTopup(sql, {
      topupId,
      workflowId: `topup-late:${topupId}`,
      payment: intent(topupId, accountId, status),
      livemode: false,
    });

  const openTopups = (accountId: string) =>
    sql`SELECT id FROM topups WHERE account_id = ${accountId} AND status IN ('pending', 'charging')`;

  it('when a late success grants a top-up whose failure was unknown, then failures after it that were never counted do not stay counted', async () => {
    const accountId = await account();
    await fail(await openTopup(accountId), 'card_declined');
    const unknown = await openTopup(accountId);
    await fail(unknown, 'stripe_unavailable');
    // The balance came back above the threshold meanwhile, and another charge went unanswered.
    await fail(await openTopup(accountId), 'stripe_unavailable');
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ consecutiveFailures: 1 });

    expect(await late(unknown, accountId, 'succeeded')).toMatchObject({ outcome: 'granted', applied: true });
    // The decline came before this success, and nothing after it was counted.
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ enabled: true, consecutiveFailures: 0 });
  });

  it('when Stripe later reports that the unanswered charge was declined, then automatic top-up charges again at the next movement below the threshold', async () => {
    const accountId = await account();
    const topupId = await openTopup(accountId);
    await fail(topupId, 'stripe_unavailable');

    expect(await late(topupId, accountId, 'requires_payment_method')).toMatchObject({ outcome: 'settled' });
    expect(await findTopupSettings(sql, accountId)).toMatchObject({ enabled: true, consecutiveFailures: 0 });

    await sql.begin((tx) =>
      createGrant(tx, {
        accountId,
        source: 'manual',
        category: 'promotional',
        priority: 10,
        expiresAt: null,
        amount: 10,
        businessKey: `late-manual:${topupId}`,
        kind: 'grant',
        reason: 'a movement that leaves the balance below the threshold',
      }),
    );
    const [opened] = await openTopups(accountId);
    expect(opened).toBeDefined();

    // The same event heard again while that newer top-up is open arms nothing.
    expect(await late(topupId, accountId, 'requires_payment_method')).toMatchObject({ outcome: 'settled' });
    const [settings] = await sql`SELECT armed FROM topup_settings WHERE account_id = ${accountId}`;
    expect(settings).toEqual({ armed: false });
    // No run here charges it: nothing is left for another file's maintenance to start.
    await sql`DELETE FROM balance_follow_ups WHERE account_id = ${accountId}`;
  });
});

describe('a receipt tried inside its workflow task', () => {
  let sql: Sql;
  beforeAll(() => {
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 5 });
  });
  afterAll(async () => {
    await sql?.end();
  });

  it('when a slow send that began before SMTP failed succeeds after the failure, then the next tries still give up at once', async () => {
    const prefix = `late-receipt-${randomUUID()}`;
    const keys = ['slow', 'failing', 'next'].map((name) => `${prefix}:${name}`);
    for (const key of keys) {
      await enqueueEmail(sql, {
        key,
        accountId: null,
        to: 'someone@customers.test',
        subject: key,
        text: key,
      });
    }
    let releaseSlow: () => void = () => {};
    let slowStarted: () => void = () => {};
    const slowIsSending = new Promise<void>((resolve) => (slowStarted = resolve));
    const handed: string[] = [];
    const mailer: Mailer = {
      async send(message) {
        handed.push(message.subject);
        if (message.subject === keys[0]) {
          slowStarted();
          await new Promise<void>((resolve) => (releaseSlow = resolve));
        }
        if (message.subject === keys[1]) throw new Error('connect ECONNREFUSED 127.0.0.1:25');
        return { messageId: message.messageId };
      },
      close() {},
    };
    const activities = createEmailActivities({
      sql,
      mailer,
      invoicePayments: null,
      workflows: { isRunning: () => Promise.resolve(false) },
      config: { stripe: { livemode: false }, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    });
    const env = new MockActivityEnvironment({ isLocal: true }, { logger: silent });
    const tryInTask = (receiptKey: string) => env.run(activities.sendReceipt, { receiptKey });
    try {
      const slow = tryInTask(keys[0] as string);
      await slowIsSending;
      await expect(tryInTask(keys[1] as string)).rejects.toMatchObject({
        message: expect.stringContaining('ECONNREFUSED'),
      });
      releaseSlow();
      expect(await slow).toEqual({ status: 'sent' });

      await expect(tryInTask(keys[2] as string)).rejects.toMatchObject({ code: 'smtp_try_deferred' });
      expect(handed).toEqual([keys[0], keys[1]]);
    } finally {
      releaseSlow();
      await sql`DELETE FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
    }
  });
});
