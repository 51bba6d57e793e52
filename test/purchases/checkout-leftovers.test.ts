import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { checkedBalance, deliverAndSettle } from '../support/billing';
import { outboxRowsFor, purchaseRow } from '../support/db';
import { startHarness, type Harness } from '../support/harness';

describe('checkouts that never pay', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when a delayed payment fails, then the purchase is marked failed, nothing is granted and the customer is told once', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter', paymentStatus: 'unpaid' });
    await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
    const failed = stripeEvent('checkout.session.async_payment_failed', session);
    const results = await deliverAndSettle(h, [
      failed,
      failed,
      stripeEvent('checkout.session.async_payment_failed', session),
    ]);
    expect(results.map((result) => result.stage)).toEqual(['recorded', 'recorded']);
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({
      status: 'payment_failed',
      credits: null,
    });
    expect(await checkedBalance(h, account.id)).toBe(0);

    expect(await h.smtp.settledMail(account.email)).toEqual([
      expect.objectContaining({
        subject: 'Your payment did not go through',
        text: expect.stringContaining('$9.00'),
      }),
    ]);
  });

  it('when the failure arrives before the unpaid completion, then the purchase stays failed', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter', paymentStatus: 'unpaid' });
    await deliverAndSettle(h, [stripeEvent('checkout.session.async_payment_failed', session)]);
    await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'payment_failed' });
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  it('when a session expires, then the purchase is marked expired and nobody is emailed', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'growth', paymentStatus: 'unpaid' });
    session.status = 'expired';
    const [result] = await deliverAndSettle(h, [stripeEvent('checkout.session.expired', session)]);
    expect(result).toMatchObject({ stage: 'recorded', purchaseStatus: 'expired', notice: 'not_applicable' });
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'expired' });
    // Nothing was queued, so nothing can be sent.
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([]);
    expect(h.smtp.to(account.email)).toEqual([]);
  });

  it('when a completed purchase is reported expired, then it stays completed with its credits', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
    const [result] = await deliverAndSettle(h, [stripeEvent('checkout.session.expired', session)]);
    expect(result).toMatchObject({ stage: 'already_completed' });
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'completed' });
    expect(await checkedBalance(h, account.id)).toBe(100);
  });
});
