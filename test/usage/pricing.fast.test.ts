import fc from 'fast-check';
import { accruesFractions, creditsForEvent, creditsForUnits } from '../../domain/usage-pricing';

/**
 * Pricing without rounding loss (domain/usage-pricing.ts): a feature's price is `credits` per
 * `units`, each event burns the whole credits its units complete on the meter, so across any
 * sequence of events the credits burned are the usage priced once, rounded down once.
 */
describe('usage pricing', () => {
  const price = fc.record({
    credits: fc.integer({ min: 1, max: 1_000_000 }),
    units: fc.integer({ min: 1, max: 1_000_000 }),
  });

  it('when 1 credit buys 1,000 tokens, then 2,500 tokens burn 2 and the next 600 burn 1 (3,100 priced once)', () => {
    const tokens = { credits: 1, units: 1000 };
    expect(creditsForEvent(0n, 2500n, tokens)).toBe(2n);
    expect(creditsForEvent(2500n, 600n, tokens)).toBe(1n);
    expect(creditsForUnits(3100n, tokens)).toBe(3n);
  });

  it('when an event is small, then it burns nothing until the meter completes a credit', () => {
    const tokens = { credits: 1, units: 1000 };
    let accrued = 0n;
    const burned: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      burned.push(creditsForEvent(accrued, 300n, tokens));
      accrued += 300n;
    }
    expect(burned).toEqual([0n, 0n, 0n, 1n]);
  });

  it('whether a price accrues fractions: only when its units do not divide its credits', () => {
    expect(accruesFractions({ credits: 5, units: 1 })).toBe(false);
    expect(accruesFractions({ credits: 10, units: 5 })).toBe(false);
    expect(accruesFractions({ credits: 1, units: 1000 })).toBe(true);
    expect(accruesFractions({ credits: 3, units: 20 })).toBe(true);
  });

  it('across any sequence of events, the credits burned equal the usage priced once: within one credit below, never above', () => {
    fc.assert(
      fc.property(
        price,
        fc.array(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { maxLength: 50 }),
        (p, events) => {
          let accrued = 0n;
          let burned = 0n;
          for (const quantity of events) {
            const credits = creditsForEvent(accrued, BigInt(quantity), p);
            expect(credits >= 0n).toBe(true);
            burned += credits;
            accrued += BigInt(quantity);
          }
          // Exact rational total: accrued × credits / units. burned ≤ it < burned + 1.
          const exactTimesUnits = accrued * BigInt(p.credits);
          expect(burned * BigInt(p.units) <= exactTimesUnits).toBe(true);
          expect(exactTimesUnits < (burned + 1n) * BigInt(p.units)).toBe(true);
          expect(burned).toBe(creditsForUnits(accrued, p));
        },
      ),
    );
  });

  it('when a price has no fractions, then every event burns exactly its quantity times the price', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.bigInt({ min: 0n, max: 2n ** 70n }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        (units, multiple, accrued, quantity) => {
          const p = { credits: units * multiple, units };
          expect(accruesFractions(p)).toBe(false);
          expect(creditsForEvent(accrued, BigInt(quantity), p)).toBe(BigInt(quantity) * BigInt(multiple));
        },
      ),
    );
  });

  it('when the meter and the price pass 2^53 together, then the arithmetic stays exact', () => {
    const p = { credits: 999_999, units: 1_000_000 };
    const accrued = 2n ** 60n;
    expect(creditsForEvent(accrued, 1_000_000n, p)).toBe(999_999n);
    expect(creditsForUnits(accrued, p)).toBe((accrued * 999_999n) / 1_000_000n);
  });
});
