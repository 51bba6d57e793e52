import { randomUUID } from 'node:crypto';
import { debitCredits, reviseRevocation } from '../../credits/index';
import { saveTopupSettings } from '../../db/topups/topups';
import { grantDirectly } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

/**
 * An automatic top-up charges the customer's card, so only spending opens one: a debit, a
 * capture, usage, or an expiry that takes the balance below the threshold (or leaves it below
 * while armed). Credits that arrive (a promotional grant, the customer's own purchase) and credits
 * taken back (a refund, a dispute) never do, even when the threshold is armed with the balance
 * already below it: settings saved while below, or a month whose cap was reached. The engine
 * records the top-up in the movement's transaction; no worker runs here, so it is seen as a row.
 */
describe('what may open an automatic top-up', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An account holding `credits`, with automatic top-up saved (armed) at `threshold`. */
  async function armedAccount(credits: number, threshold: number, monthlyCapCents = 100_000) {
    const account = await h.newAccount();
    if (credits > 0) await grantDirectly(h.sql, account.id, { key: 'fund', amount: credits });
    await saveTopupSettings(h.sql, account.id, {
      enabled: true,
      threshold,
      packId: null,
      credits: 500,
      amountCents: 4500,
      currency: 'usd',
      monthlyCapCents,
      maxConsecutiveFailures: 3,
    });
    return account;
  }

  const topupsOf = (accountId: string) =>
    h.sql<{ status: string }[]>`SELECT status FROM topups WHERE account_id = ${accountId}`;

  it('when a promotional grant lands on an account below its threshold with top-up armed, then no top-up opens', async () => {
    const account = await armedAccount(0, 100);
    await grantDirectly(h.sql, account.id, { key: 'welcome', amount: 50, category: 'promotional' });
    expect(await topupsOf(account.id)).toEqual([]);
  });

  it('when the customer buys a pack that still leaves the balance below the threshold, then no top-up opens', async () => {
    const account = await armedAccount(10, 1000);
    await grantDirectly(h.sql, account.id, { key: `cs_${randomUUID()}`, amount: 100 });
    expect(await topupsOf(account.id)).toEqual([]);
  });

  it('when a refund takes the balance below the threshold, then no top-up opens; the next debit does', async () => {
    const account = await armedAccount(0, 100);
    const bought = await grantDirectly(h.sql, account.id, { key: 'bought', amount: 300 });
    await h.sql.begin((tx) =>
      reviseRevocation(tx, bought.grant.id, 250, {
        businessKey: `refund-${randomUUID()}`,
        kind: 'refund',
        reason: 'refunded',
      }),
    );
    expect(await topupsOf(account.id)).toEqual([]);

    const spent = await debitCredits(h.sql, {
      accountId: account.id,
      amount: 1,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'work',
    });
    expect(spent.followUps).toBe(true);
    expect(await topupsOf(account.id)).toEqual([{ status: 'pending' }]);
  });

  it('when the monthly cap left the threshold armed below it, then a grant charges nothing', async () => {
    // A cap below one top-up's price: the crossing is recorded as skipped and stays armed.
    const account = await armedAccount(200, 100, 1000);
    await debitCredits(h.sql, {
      accountId: account.id,
      amount: 150,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'work',
    });
    expect(await topupsOf(account.id)).toEqual([]);
    const [settings] = await h.sql<{ armed: boolean; last_skipped_reason: string | null }[]>`
      SELECT armed, last_skipped_reason FROM topup_settings WHERE account_id = ${account.id}`;
    expect(settings).toEqual({ armed: true, last_skipped_reason: 'the monthly cap is reached' });

    await h.sql`UPDATE topup_settings SET monthly_cap_cents = 100000 WHERE account_id = ${account.id}`;
    await grantDirectly(h.sql, account.id, { key: 'promo', amount: 10, category: 'promotional' });
    expect(await topupsOf(account.id)).toEqual([]);
  });
});
