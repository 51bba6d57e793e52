import {
  grossUpForCardFee,
  priceCustomCredits,
  type CustomCreditPricing,
} from '../../domain/checkout-pricing';

const pricing: CustomCreditPricing = {
  unitPriceCents: 9,
  minCredits: 100,
  maxCredits: 100_000,
  currency: 'usd',
  fee: null,
};
const stripeCardFee = { percentBps: 290, fixedCents: 30 };

describe('custom credit pricing', () => {
  it('when no fee is passed on, then the price is credits × unit price', () => {
    expect(priceCustomCredits(250, pricing)).toEqual({ amountCents: 2250, netCents: 2250, currency: 'usd' });
  });

  it('when the card fee is passed on, then the amount is grossed up and rounded up to the cent', () => {
    // (900 + 30) / (1 − 0.029) = 957.77… → 958
    expect(priceCustomCredits(100, { ...pricing, fee: stripeCardFee })).toEqual({
      amountCents: 958,
      netCents: 900,
      currency: 'usd',
    });
    expect(grossUpForCardFee(10_000, stripeCardFee)).toBe(10_330); // 10 030 / 0.971 = 10 329.55…
    expect(grossUpForCardFee(1, { percentBps: 0, fixedCents: 0 })).toBe(1);
    expect(grossUpForCardFee(971, { percentBps: 290, fixedCents: 0 })).toBe(1000); // exact: no rounding
  });

  it('when the grossed-up amount pays the fee, then what remains is at least the net price, and at most one cent more', () => {
    for (let net = 1; net <= 20_000; net += 37) {
      const gross = grossUpForCardFee(net, stripeCardFee);
      const remains = (amount: number) => amount - (amount * 290) / 10_000 - 30;
      expect(remains(gross)).toBeGreaterThanOrEqual(net);
      expect(remains(gross - 1)).toBeLessThan(net);
    }
  });

  it.each([[99], [100_001], [1.5], [-5]])(
    'when %p credits are asked for, then pricing refuses',
    (credits) => {
      expect(() => priceCustomCredits(credits, pricing)).toThrow(
        expect.objectContaining({ code: 'invalid_request', status: 400 }),
      );
    },
  );
});
