import { checkoutSession, stripeEvent, type StripeEvent } from '../../stripe/fixtures/index';
import { checkedBalance, deliverAndSettle, grantedPurchase } from '../support/billing';
import { balanceOf, driftedAccounts, ledgerRowsFor, outboxRowsFor } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { sleep, waitUntil } from '../support/wait';

describe('duplicate and concurrent deliveries', () => {
  let h: Harness;
  const accounts: string[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when one event is delivered 50 times at once, then one workflow runs, one ledger row and one receipt', async () => {
    const account = await h.newAccount();
    accounts.push(account.id);
    const session = checkoutSession({ accountId: account.id, packId: 'scale', amountTotal: 9000 });
    const event = stripeEvent('checkout.session.completed', session);

    const responses = await Promise.all(Array.from({ length: 50 }, () => h.deliver(event)));
    expect(responses.every((response) => response.status === 200)).toBe(true);
    const statuses = responses.map((response) => (response.body as { status: string }).status);
    expect(statuses.filter((status) => status === 'started')).toHaveLength(1);
    expect(statuses.filter((status) => status === 'duplicate')).toHaveLength(49);

    await h.temporal.workflow.getHandle(event.id).result();
    // Late redeliveries after completion are duplicates too.
    expect((await h.deliver(event)).body).toMatchObject({ status: 'duplicate' });

    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await balanceOf(h.sql, account.id)).toBe(1200);
    expect(await h.smtp.settledMail(account.email)).toHaveLength(1);
    expect(await outboxRowsFor(h.sql, account.id)).toHaveLength(1);
  });

  it('when several different events describe one session, delivered concurrently and repeatedly, then one grant and one receipt', async () => {
    const account = await h.newAccount();
    accounts.push(account.id);
    const session = checkoutSession({ accountId: account.id, packId: 'growth', amountTotal: 4500 });
    const events = [
      stripeEvent('checkout.session.completed', session),
      stripeEvent('checkout.session.async_payment_succeeded', session),
      stripeEvent('checkout.session.completed', session),
      stripeEvent('checkout.session.async_payment_succeeded', session),
    ];
    const deliveries = events.flatMap((event) => Array.from({ length: 5 }, () => h.deliver(event)));
    const responses = await Promise.all(deliveries);
    expect(responses.every((response) => response.status === 200)).toBe(true);

    const results = await Promise.all(
      events.map((event) => h.temporal.workflow.getHandle(event.id).result()),
    );
    expect(results.filter((result) => result.stage === 'completed')).toHaveLength(1);
    expect(results.filter((result) => result.stage === 'already_granted')).toHaveLength(3);

    await h.smtp.waitForMail(account.email);
    await sleep(500);
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await balanceOf(h.sql, account.id)).toBe(550);
    expect(h.smtp.to(account.email)).toHaveLength(1);
  });

  it('when many different purchases for one account land at once, then none is lost', async () => {
    const account = await h.newAccount();
    accounts.push(account.id);
    const events = Array.from({ length: 20 }, () =>
      stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter' }),
      ),
    );
    await Promise.all(events.map((event) => h.deliver(event)));
    await Promise.all(events.map((event) => h.temporal.workflow.getHandle(event.id).result()));
    expect(await balanceOf(h.sql, account.id)).toBe(2000);
    const balancesAfter = await h.sql<{ balance_after: string }[]>`
      SELECT balance_after FROM credit_ledger WHERE account_id = ${account.id} ORDER BY id`;
    // Each row records the balance it produced: 100, 200, … 2000, no two alike.
    expect(balancesAfter.map((row) => Number(row.balance_after))).toEqual(
      Array.from({ length: 20 }, (_, index) => (index + 1) * 100),
    );
    await waitUntil(() => h.smtp.to(account.email).length === 20, { what: '20 receipts' });
  });

  describe('an event and its twin', () => {
    it('when the same checkout event and its async twin are each delivered many times at once, then one grant, one receipt, and every other run is told it was granted', async () => {
      const { account, session } = await grantedPurchase(h, 'starter', { deliver: false });
      accounts.push(account.id);
      const sessionId = session.id as string;
      const completed = stripeEvent('checkout.session.completed', session);
      const twin = stripeEvent('checkout.session.async_payment_succeeded', session);
      const events: StripeEvent[] = Array.from({ length: 15 }, () => [completed, twin]).flat();
      const results = await deliverAndSettle(h, events);
      expect(results.map((result) => result.stage).sort()).toEqual(['already_granted', 'completed']);
      expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
      expect(await h.smtp.settledMail(account.email)).toHaveLength(1);
      expect(await checkedBalance(h, account.id)).toBe(100);
    }, 120_000);
  });

  // Last in the file: every account its tests moved money on.
  it('when the money tests of this file are done, then every balance still equals the sum of its ledger', async () => {
    expect(accounts.length).toBeGreaterThan(0);
    expect(await driftedAccounts(h.sql, accounts)).toEqual([]);
  });
});
