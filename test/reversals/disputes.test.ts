import { dispute, stripeEvent, stripeId } from '../../stripe/fixtures/index';
import {
  checkedBalance,
  deliverAndSettle,
  grantedPurchase,
  ledgerOf,
  newSubscription,
} from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

describe('disputes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A granted purchase, and the events of one dispute of its charge. */
  async function disputed(pack: 'growth' | 'scale' = 'growth') {
    const purchase = await grantedPurchase(h, pack);
    const id = stripeId('dp');
    const object = (status: string) =>
      dispute({
        id,
        chargeId: purchase.chargeId,
        paymentIntentId: purchase.paymentIntentId,
        amount: purchase.terms.amount,
        status,
      });
    return {
      ...purchase,
      disputeId: id,
      created: () => stripeEvent('charge.dispute.created', object('needs_response')),
      closed: (status: 'won' | 'lost') => stripeEvent('charge.dispute.closed', object(status)),
    };
  }

  it('when a dispute is opened and then won, then the credits are revoked and restored, each under its own key', async () => {
    const fixture = await disputed();
    const [opened] = await deliverAndSettle(h, [fixture.created()]);
    expect(opened).toMatchObject({ stage: 'applied', delta: -550 });
    expect(await checkedBalance(h, fixture.account.id)).toBe(0);

    const [won] = await deliverAndSettle(h, [fixture.closed('won')]);
    expect(won).toMatchObject({ stage: 'applied', delta: 550, revokedCredits: 0 });
    expect(await checkedBalance(h, fixture.account.id)).toBe(550);
    expect((await ledgerOf(h, fixture.account.id)).slice(1)).toEqual([
      expect.objectContaining({ key: `dispute:${fixture.disputeId}`, delta: -550, kind: 'dispute' }),
      expect.objectContaining({
        key: `dispute:${fixture.disputeId}:closed`,
        delta: 550,
        kind: 'dispute_won',
      }),
    ]);
  });

  it('when a dispute is opened and then lost, then the credits stay revoked', async () => {
    const fixture = await disputed();
    await deliverAndSettle(h, [fixture.created()]);
    const [lost] = await deliverAndSettle(h, [fixture.closed('lost')]);
    expect(lost).toMatchObject({ stage: 'no_change', delta: 0, revokedCredits: 550 });
    expect(await checkedBalance(h, fixture.account.id)).toBe(0);
  });

  it('when a won dispute is followed by a refund, then the refund takes back what is still granted, never more', async () => {
    const fixture = await disputed('scale');
    await deliverAndSettle(h, [fixture.created()]);
    await deliverAndSettle(h, [fixture.closed('won')]);
    await deliverAndSettle(h, [fixture.refunded(4500)]);
    expect(await checkedBalance(h, fixture.account.id)).toBe(600);
    await deliverAndSettle(h, [fixture.refunded(9000), fixture.refunded(9000)]);
    expect(await checkedBalance(h, fixture.account.id)).toBe(0);
    const ledger = await ledgerOf(h, fixture.account.id);
    expect(ledger.slice(1).reduce((sum, row) => sum + row.delta, 0)).toBe(-1200);
  });

  it('when the closing event arrives before the opening one, then a won dispute revokes nothing', async () => {
    const fixture = await disputed();
    await deliverAndSettle(h, [fixture.closed('won')]);
    const [late] = await deliverAndSettle(h, [fixture.created()]);
    expect(late).toMatchObject({ stage: 'no_change', delta: 0 });
    expect(await checkedBalance(h, fixture.account.id)).toBe(550);
  });

  it('when a refund lands while a dispute is open and the dispute is then won, then only the unrefunded part comes back', async () => {
    const fixture = await disputed('scale');
    await deliverAndSettle(h, [fixture.created()]);
    await deliverAndSettle(h, [fixture.refunded(3000)]);
    expect(await checkedBalance(h, fixture.account.id)).toBe(0);
    await deliverAndSettle(h, [fixture.closed('won')]);
    expect(await checkedBalance(h, fixture.account.id)).toBe(800);
  });

  it('when a subscription invoice payment is disputed, then its period credits are revoked', async () => {
    // Its invoice events carry their payments: no Stripe API here to ask which invoice was paid.
    const fixture = await newSubscription(h, 'pro', { includePayments: true });
    await deliverAndSettle(h, fixture.startEvents());
    const paymentIntentId = (
      fixture.firstInvoice.payments as { data: { payment: { payment_intent: string } }[] }
    ).data[0]?.payment.payment_intent as string;
    const event = stripeEvent(
      'charge.dispute.created',
      dispute({ paymentIntentId, amount: fixture.terms.amount, status: 'needs_response' }),
    );
    const [result] = await deliverAndSettle(h, [event]);
    expect(result).toMatchObject({ stage: 'applied', delta: -5000, purchaseId: fixture.firstInvoice.id });
    expect(await checkedBalance(h, fixture.account.id)).toBe(0);
  });
});
