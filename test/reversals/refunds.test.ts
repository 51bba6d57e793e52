import { refundKey } from '../../activities/reversals/reversals';
import { charge, checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { ledgerRowsFor } from '../support/db';
import {
  checkedBalance,
  deliverAndSettle,
  grantedPurchase,
  ledgerOf,
  newSubscription,
} from '../support/billing';
import { startHarness, type Harness } from '../support/harness';
import { StripeStandIn } from '../support/stripe-stand-in';

describe('refunds', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness({
      configOverrides: { STRIPE_SECRET_KEY: 'sk_test_standin0123456789', STRIPE_API_BASE_URL: stripe.url },
    });
  });
  afterAll(async () => {
    await h?.close();
    await stripe?.stop();
  });

  const refunds = async (accountId: string) =>
    (await ledgerOf(h, accountId)).filter((row) => row.kind === 'refund');

  it('when a purchase is refunded in full, then all its credits are revoked and the ledger says why', async () => {
    const purchase = await grantedPurchase(h, 'growth');
    const [result] = await deliverAndSettle(h, [purchase.refunded(4500)]);
    expect(result).toMatchObject({
      stage: 'applied',
      delta: -550,
      revokedCredits: 550,
      purchaseId: purchase.session.id,
    });
    expect(await checkedBalance(h, purchase.account.id)).toBe(0);
    expect(await refunds(purchase.account.id)).toEqual([
      {
        key: `refund:${purchase.chargeId}:4500`,
        delta: -550,
        kind: 'refund',
        reason: expect.stringContaining('4500 of 4500 refunded'),
      },
    ]);
  });

  it('when two partial refunds arrive, in either order, then they revoke in proportion and add up to the credits granted', async () => {
    for (const order of [
      [3000, 9000],
      [9000, 3000],
    ]) {
      const purchase = await grantedPurchase(h, 'scale');
      for (const total of order) await deliverAndSettle(h, [purchase.refunded(total)]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(0);
      const rows = await refunds(purchase.account.id);
      expect(rows.reduce((sum, row) => sum + row.delta, 0)).toBe(-1200);
      if (order[0] === 3000) {
        // A third of 9000 cents refunded takes back a third of 1200 credits, then the rest.
        expect(rows.map((row) => row.delta)).toEqual([-400, -800]);
      } else {
        // The whole refund arrived first; the older, smaller total adds nothing.
        expect(rows.map((row) => row.delta)).toEqual([-1200]);
      }
    }
  });

  it('when a partial refund leaves a fraction of a credit, then it is rounded in the customer favour', async () => {
    const purchase = await grantedPurchase(h, 'growth');
    await deliverAndSettle(h, [purchase.refunded(1000)]);
    // 550 × 1000 / 4500 = 122.2…: 122 credits are revoked.
    expect(await checkedBalance(h, purchase.account.id)).toBe(550 - 122);
  });

  it('when the same refund is delivered twice, and again as another event, then it is revoked once', async () => {
    const purchase = await grantedPurchase(h, 'starter');
    const event = purchase.refunded(450);
    const again = stripeEvent('charge.refunded', event.data.object);
    const results = await deliverAndSettle(h, [event, event, again]);
    expect(results.map((result) => result.stage).sort()).toEqual(['already_applied', 'applied']);
    expect(await refunds(purchase.account.id)).toHaveLength(1);
    expect(await checkedBalance(h, purchase.account.id)).toBe(50);
  });

  it('when a refund comes after the credits were spent, then the balance goes negative and the ledger says so', async () => {
    const purchase = await grantedPurchase(h, 'starter');
    const spent = await h.api('POST', `/v1/accounts/${purchase.account.id}/debits`, {
      amount: 80,
      idempotencyKey: 'job-1',
      reason: 'image generation',
    });
    expect(spent.status).toBe(201);
    await deliverAndSettle(h, [purchase.refunded(900)]);
    expect(await checkedBalance(h, purchase.account.id)).toBe(-80);
    const account = await h.api('GET', `/v1/accounts/${purchase.account.id}`);
    expect(account.body.balance).toBe(-80);
    expect(await refunds(purchase.account.id)).toEqual([
      expect.objectContaining({
        delta: -100,
        reason: expect.stringContaining(`100 of 100 credits of ${purchase.session.id as string}`),
      }),
    ]);
  });

  it('when the refund arrives before the purchase it refunds, then it waits and revokes once the purchase is granted', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    const refund = stripeEvent(
      'charge.refunded',
      charge({ paymentIntentId: session.payment_intent as string, amount: 900, amountRefunded: 900 }),
    );
    expect((await h.deliver(refund)).status).toBe(200);
    const results = await deliverAndSettle(h, [refund, stripeEvent('checkout.session.completed', session)]);
    expect(results.map((result) => result.stage).sort()).toEqual(['applied', 'completed']);
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  describe('of a subscription invoice whose events left out its payments, as Stripe sends them', () => {
    it('when it is refunded, then Stripe names the invoice once and the period credits are revoked in proportion', async () => {
      const fixture = await newSubscription(h, 'pro', { includePayments: false });
      expect(fixture.firstInvoice).not.toHaveProperty('payments');
      await deliverAndSettle(h, fixture.startEvents());
      expect(await checkedBalance(h, fixture.account.id)).toBe(5000);
      stripe.recordInvoicePayment(fixture.firstPaymentIntentId, fixture.firstInvoice.id);
      const refunded = (amountRefunded: number) =>
        stripeEvent(
          'charge.refunded',
          charge({
            id: `ch_of_${fixture.firstPaymentIntentId}`,
            paymentIntentId: fixture.firstPaymentIntentId,
            amount: fixture.terms.amount,
            amountRefunded,
          }),
        );

      const [half] = await deliverAndSettle(h, [refunded(3950)]);
      expect(half).toMatchObject({ stage: 'applied', delta: -2500, purchaseId: fixture.firstInvoice.id });
      expect(stripe.invoicePaymentLookups(fixture.firstPaymentIntentId)).toHaveLength(1);
      // The purchase now knows its payment intent: the rest of the refund needs no second lookup.
      const [rest] = await deliverAndSettle(h, [refunded(7900)]);
      expect(rest).toMatchObject({ stage: 'applied', delta: -2500, revokedCredits: 5000 });
      expect(stripe.invoicePaymentLookups(fixture.firstPaymentIntentId)).toHaveLength(1);
      expect(await checkedBalance(h, fixture.account.id)).toBe(0);
    });

    it('when Stripe cannot answer for a while, then the refund waits and revokes once it can', async () => {
      const fixture = await newSubscription(h, 'basic', { includePayments: false });
      await deliverAndSettle(h, fixture.startEvents());
      stripe.recordInvoicePayment(fixture.firstPaymentIntentId, fixture.firstInvoice.id);
      stripe.failNext(500, { type: 'api_error', message: 'An unknown error occurred' }, 4);
      const [result] = await deliverAndSettle(h, [
        stripeEvent(
          'charge.refunded',
          charge({ paymentIntentId: fixture.firstPaymentIntentId, amount: 1900, amountRefunded: 1900 }),
        ),
      ]);
      expect(result).toMatchObject({ stage: 'applied', delta: -1000 });
      expect(stripe.invoicePaymentLookups(fixture.firstPaymentIntentId).length).toBeGreaterThan(4);
      expect(await checkedBalance(h, fixture.account.id)).toBe(0);
    });
  });

  it('when a charge was never a purchase, then the refund changes nothing', async () => {
    const bystander = await grantedPurchase(h, 'starter');
    const stray = { ...charge({ amountRefunded: 900 }), payment_intent: null };
    const [result] = await deliverAndSettle(h, [stripeEvent('charge.refunded', stray)]);
    expect(result).toMatchObject({ stage: 'no_purchase', delta: null });
    // No ledger row under the refund's key, and an account with credits kept them.
    expect(await ledgerRowsFor(h.sql, refundKey(stray.id, 900))).toHaveLength(0);
    expect(await checkedBalance(h, bystander.account.id)).toBe(100);
  });
});
