import { buyerOf, checkCheckoutPurchase, offerFromPack, type Offer } from '../../domain/purchase-rules';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import { summarizeCheckoutSession } from '../../stripe/objects';
import { checkoutSession } from '../../stripe/fixtures/index';

const pack = offerFromPack({
  id: 'starter',
  name: 'Starter',
  credits: 100,
  priceCents: 900,
  currency: 'usd',
});
// A snapshot: what the API sold to acct_1 when it created the session.
const snapshot: Offer = { ...pack, soldTo: 'acct_1' };

function session(overrides: Partial<CheckoutSessionSummary> = {}): CheckoutSessionSummary {
  return {
    ...summarizeCheckoutSession(checkoutSession({ accountId: 'acct_1', packId: 'starter' })),
    ...overrides,
  };
}

const check = (
  s: CheckoutSessionSummary,
  overrides: { offer?: Offer | null; accountExists?: boolean; live?: boolean } = {},
) =>
  checkCheckoutPurchase({
    session: s,
    offer: overrides.offer === undefined ? pack : overrides.offer,
    accountExists: overrides.accountExists ?? true,
    expectedLivemode: overrides.live ?? false,
  });

describe('checkout purchase rules', () => {
  it('when the session pays the catalog price, then the catalog credits are granted', () => {
    expect(check(session())).toEqual({ kind: 'grant', accountId: 'acct_1', offer: pack, credits: 100 });
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
    ['pack_missing', session({ packId: null }), { offer: null }],
    ['pack_unknown', session({ packId: 'gone' }), { offer: null }],
    ['account_mismatch', session({ accountId: 'acct_2' }), { offer: snapshot }],
    ['account_mismatch', session({ metadataAccountId: 'acct_2' }), {}],
    ['account_mismatch', session({ metadataAccountId: 'acct_2' }), { offer: snapshot }],
    ['account_missing', session({ accountId: null, metadataAccountId: 'acct_1' }), {}],
    ['pack_mismatch', session({ packId: 'scale' }), { offer: snapshot }],
    ['payment_status_unexpected', session({ paymentStatus: 'no_payment_required' }), {}],
  ] as const)('when the check finds %s, then the purchase is held with that reason', (code, s, overrides) => {
    expect(check(s, overrides)).toMatchObject({ kind: 'hold', code });
  });

  it('when a snapshot sold custom credits, then its credits are granted at its price', () => {
    const custom: Offer = {
      packId: null,
      name: '250 credits',
      credits: 250,
      priceCents: 2250,
      currency: 'usd',
      soldTo: 'acct_1',
    };
    expect(
      check(session({ packId: null, amountTotal: 2250, claimedCredits: '250' }), { offer: custom }),
    ).toMatchObject({
      kind: 'grant',
      credits: 250,
    });
  });

  it('when Stripe metadata names another account than client_reference_id, then the client reference is the buyer and the metadata’s account only a claim', () => {
    const raw = checkoutSession({ accountId: 'acct_meta' });
    const summary = summarizeCheckoutSession({ ...raw, client_reference_id: 'acct_ref' });
    expect(summary).toMatchObject({ accountId: 'acct_ref', metadataAccountId: 'acct_meta' });
    expect(buyerOf(summary, pack)).toBe('acct_ref');
    expect(check(summary)).toMatchObject({ kind: 'hold', code: 'account_mismatch' });
  });

  it('when a snapshot was taken, then its account is the buyer, whatever the session names', () => {
    expect(buyerOf(session({ accountId: null, metadataAccountId: null }), snapshot)).toBe('acct_1');
    expect(
      check(session({ accountId: null, metadataAccountId: null, claimedCredits: '100' }), {
        offer: snapshot,
      }),
    ).toEqual({ kind: 'grant', accountId: 'acct_1', offer: snapshot, credits: 100 });
  });

  it('when a run started before the metadata account was summarized apart is checked, then its session is checked as it was (no claim, no hold)', () => {
    const { metadataAccountId: _absent, ...earlier } = session();
    expect(check(earlier)).toEqual({ kind: 'grant', accountId: 'acct_1', offer: pack, credits: 100 });
  });
});
