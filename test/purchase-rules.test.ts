import { checkCheckoutPurchase, type PackPrice } from '../domain/purchase-rules';
import type { CheckoutSessionSummary } from '../domain/stripe-objects';
import { summarizeCheckoutSession } from '../domain/stripe-objects';
import { checkoutSession } from '../scripts/stripe-events';

const pack: PackPrice = { id: 'starter', credits: 100, priceCents: 900, currency: 'usd' };

function session(overrides: Partial<CheckoutSessionSummary> = {}): CheckoutSessionSummary {
  return {
    ...summarizeCheckoutSession(checkoutSession({ accountId: 'acct_1', packId: 'starter' })),
    ...overrides,
  };
}

const check = (
  s: CheckoutSessionSummary,
  overrides: { pack?: PackPrice | null; accountExists?: boolean; live?: boolean } = {},
) =>
  checkCheckoutPurchase({
    session: s,
    pack: overrides.pack === undefined ? pack : overrides.pack,
    accountExists: overrides.accountExists ?? true,
    expectedLivemode: overrides.live ?? false,
  });

describe('checkout purchase rules', () => {
  it('when the session pays the catalog price, then the catalog credits are granted', () => {
    expect(check(session())).toEqual({ kind: 'grant', accountId: 'acct_1', pack, credits: 100 });
  });

  it('when metadata.credits agrees with the catalog, then it changes nothing', () => {
    expect(check(session({ claimedCredits: '100' }))).toMatchObject({ kind: 'grant', credits: 100 });
  });

  it('when the currency differs only in case, then it still matches', () => {
    expect(check(session({ currency: 'USD' }))).toMatchObject({ kind: 'grant', credits: 100 });
  });

  it('when payment is still pending, then nothing is granted yet', () => {
    expect(check(session({ paymentStatus: 'unpaid' }))).toEqual({ kind: 'await_payment' });
  });

  it.each([
    ['amount_mismatch', session({ amountTotal: 899 }), {}],
    ['amount_mismatch', session({ amountTotal: null }), {}],
    ['currency_mismatch', session({ currency: 'eur' }), {}],
    ['credits_mismatch', session({ claimedCredits: '100000' }), {}],
    ['livemode_mismatch', session({ livemode: true }), {}],
    ['livemode_mismatch', session(), { live: true }],
    ['mode_unsupported', session({ mode: 'subscription' }), {}],
    ['account_missing', session({ accountId: null }), {}],
    ['account_unknown', session(), { accountExists: false }],
    ['pack_missing', session({ packId: null }), { pack: null }],
    ['pack_unknown', session({ packId: 'gone' }), { pack: null }],
    ['payment_status_unexpected', session({ paymentStatus: 'no_payment_required' }), {}],
  ] as const)('when the check finds %s, then the purchase is held with that reason', (code, s, overrides) => {
    expect(check(s, overrides)).toMatchObject({ kind: 'hold', code });
  });

  it('when Stripe metadata names the account, then it wins over client_reference_id', () => {
    const raw = checkoutSession({ accountId: 'acct_meta' });
    const summary = summarizeCheckoutSession({ ...raw, client_reference_id: 'acct_ref' });
    expect(summary.accountId).toBe('acct_meta');
  });
});
