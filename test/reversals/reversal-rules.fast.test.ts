import {
  creditsForRefund,
  creditsToRevoke,
  NO_REVERSAL,
  withDispute,
  withRefundTotal,
} from '../../domain/reversal-rules';
import { summarizeInvoice, summarizeSubscription } from '../../stripe/billing-objects';
import { summarizeCharge, summarizeDispute } from '../../stripe/charge-objects';
import {
  checkInvoicePayment,
  isNewerSubscriptionState,
  periodCreditsToExpire,
  type PlanTerms,
} from '../../domain/subscription-rules';
import { charge, dispute, invoice, subscription } from '../../stripe/fixtures/index';

const terms = { credits: 1200, amountCents: 9000 };

describe('refund proration', () => {
  it('when part of a payment is refunded, then the same share of credits is revoked, rounded down', () => {
    expect(creditsForRefund(terms, 3000)).toBe(400);
    expect(creditsForRefund({ credits: 550, amountCents: 4500 }, 1000)).toBe(122);
    expect(creditsForRefund(terms, 0)).toBe(0);
  });

  it('when the whole payment (or more) is refunded, then every credit is revoked and never more', () => {
    expect(creditsForRefund(terms, 9000)).toBe(1200);
    expect(creditsForRefund(terms, 12000)).toBe(1200);
  });

  it('when partial refunds accumulate, then the credits revoked only grow and end at the credits granted', () => {
    const totals = [1, 333, 3000, 4501, 8999, 9000];
    const revoked = totals.map((total) => creditsForRefund(terms, total));
    expect(revoked).toEqual([...revoked].sort((a, b) => a - b));
    expect(revoked.at(-1)).toBe(1200);
  });

  it('when a smaller cumulative total arrives after a larger one, then it changes nothing', () => {
    expect(withRefundTotal(withRefundTotal(NO_REVERSAL, 9000), 3000).refundedCents).toBe(9000);
  });
});

describe('disputes', () => {
  const opened = withDispute(NO_REVERSAL, 'dp_1', { phase: 'opened' }).facts;

  it('when a dispute is open or lost, then everything is revoked; when won, only what refunds took', () => {
    expect(creditsToRevoke(terms, opened)).toBe(1200);
    const lost = withDispute(opened, 'dp_1', { phase: 'closed', status: 'lost' }).facts;
    expect(creditsToRevoke(terms, lost)).toBe(1200);
    const won = withDispute(withRefundTotal(opened, 3000), 'dp_1', { phase: 'closed', status: 'won' }).facts;
    expect(creditsToRevoke(terms, won)).toBe(400);
  });

  it('when a closed dispute hears of its opening late, then it stays closed', () => {
    const won = withDispute(NO_REVERSAL, 'dp_1', { phase: 'closed', status: 'won' }).facts;
    expect(withDispute(won, 'dp_1', { phase: 'opened' }).facts.disputeState).toBe('won');
  });

  it('when an inquiry closes without a chargeback, then it counts as won', () => {
    expect(
      withDispute(opened, 'dp_1', { phase: 'closed', status: 'warning_closed' }).facts.disputeState,
    ).toBe('won');
  });

  it('when a second dispute names the same purchase, then it is reported and not applied', () => {
    expect(withDispute(opened, 'dp_2', { phase: 'opened' })).toEqual({ facts: opened, conflict: true });
  });
});

describe('subscription state order', () => {
  it('when an older event arrives after a newer one, then it does not replace it', () => {
    expect(
      isNewerSubscriptionState(
        { status: 'active', eventCreated: 200 },
        { status: 'past_due', eventCreated: 100 },
      ),
    ).toBe(false);
    expect(
      isNewerSubscriptionState(
        { status: 'past_due', eventCreated: 100 },
        { status: 'active', eventCreated: 200 },
      ),
    ).toBe(true);
    expect(
      isNewerSubscriptionState({ status: null, eventCreated: null }, { status: 'active', eventCreated: 1 }),
    ).toBe(true);
  });

  it('when two events share a second, then an ended state wins and otherwise the stored one stays', () => {
    expect(
      isNewerSubscriptionState(
        { status: 'active', eventCreated: 100 },
        { status: 'canceled', eventCreated: 100 },
      ),
    ).toBe(true);
    expect(
      isNewerSubscriptionState(
        { status: 'active', eventCreated: 100 },
        { status: 'past_due', eventCreated: 100 },
      ),
    ).toBe(false);
  });

  it('when a subscription has ended, then no later state revives it', () => {
    expect(
      isNewerSubscriptionState(
        { status: 'canceled', eventCreated: 100 },
        { status: 'active', eventCreated: 500 },
      ),
    ).toBe(false);
  });
});

describe('invoice grants', () => {
  const plan: PlanTerms = {
    id: 'basic-monthly',
    name: 'Basic plan',
    stripePriceId: 'price_basic_monthly',
    creditsPerPeriod: 1000,
    rollover: false,
  };
  const check = (
    options: Parameters<typeof invoice>[0],
    overrides: Partial<Parameters<typeof checkInvoicePayment>[0]> = {},
  ) =>
    checkInvoicePayment({
      invoice: summarizeInvoice(invoice(options)),
      plan,
      accountId: 'acct_1',
      expectedLivemode: false,
      ...overrides,
    });

  it('when a subscription invoice opens a period, then the plan credits are granted', () => {
    expect(check({ billingReason: 'subscription_create' })).toMatchObject({ kind: 'grant', credits: 1000 });
    expect(check({ billingReason: 'subscription_cycle', amount: 0 })).toMatchObject({
      kind: 'grant',
      credits: 1000,
    });
  });

  it('when an invoice is a proration or not a subscription invoice, then it grants nothing', () => {
    expect(check({ billingReason: 'subscription_update' })).toMatchObject({ kind: 'no_grant' });
    expect(check({ subscriptionId: null, billingReason: 'manual' })).toMatchObject({ kind: 'no_grant' });
  });

  it('when the subscription is not linked yet, then the grant waits for it', () => {
    expect(check({}, { accountId: null })).toEqual({ kind: 'await_link' });
  });

  it('when the plan is unknown or the mode differs, then it is held; an approval with credits grants them', () => {
    expect(check({}, { plan: null })).toMatchObject({ kind: 'hold', code: 'plan_unknown' });
    expect(check({ livemode: true })).toMatchObject({ kind: 'hold', code: 'livemode_mismatch' });
    expect(check({}, { plan: null, approval: { reviewer: 'ops', credits: 5 } })).toMatchObject({
      kind: 'grant',
      credits: 5,
    });
  });
});

describe('period expiry', () => {
  it('when period credits were partly spent, then only the unused part expires, within the balance', () => {
    expect(periodCreditsToExpire({ granted: 1000, spentSinceGrant: 300, balance: 800 })).toBe(700);
    expect(periodCreditsToExpire({ granted: 1000, spentSinceGrant: 0, balance: 400 })).toBe(400);
    expect(periodCreditsToExpire({ granted: 1000, spentSinceGrant: 1500, balance: 100 })).toBe(0);
    expect(periodCreditsToExpire({ granted: 1000, spentSinceGrant: 0, balance: -50 })).toBe(0);
  });
});

describe('Stripe objects of API version 2025-10-29.clover', () => {
  it('when an invoice names its subscription under parent and its payment under payments, then both are read', () => {
    const object = invoice({
      subscriptionId: 'sub_1',
      priceId: 'price_pro_monthly',
      paymentIntentId: 'pi_1',
      periodStart: 1000,
      includePayments: true,
    });
    expect(object).not.toHaveProperty('subscription');
    expect(summarizeInvoice(object)).toMatchObject({
      subscriptionId: 'sub_1',
      priceId: 'price_pro_monthly',
      paymentIntentId: 'pi_1',
      periodStart: 1000,
      periodEnd: 1000 + 30 * 24 * 3600,
    });
  });

  it('when a subscription, charge or dispute arrives, then the fields the workflows use are read', () => {
    expect(
      summarizeSubscription(subscription({ id: 'sub_1', priceId: 'price_pro_monthly', status: 'past_due' })),
    ).toMatchObject({
      id: 'sub_1',
      status: 'past_due',
      priceId: 'price_pro_monthly',
    });
    const refunded = charge({ paymentIntentId: 'pi_1', amount: 900, amountRefunded: 300 });
    expect(refunded).not.toHaveProperty('refunds');
    expect(summarizeCharge(refunded)).toMatchObject({ paymentIntentId: 'pi_1', amountRefunded: 300 });
    expect(summarizeDispute(dispute({ paymentIntentId: 'pi_1', status: 'won' }))).toMatchObject({
      paymentIntentId: 'pi_1',
      status: 'won',
    });
  });
});
