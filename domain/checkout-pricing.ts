import { errors } from './errors';
/**
 * What a checkout charges, decided by the server alone: a pack's catalog price, or a custom
 * number of credits at the configured unit price. Optionally grossed up so that, after the card
 * fee (a percentage plus a fixed part), the merchant still receives the net price. Integer
 * arithmetic in the currency's smallest unit throughout; rounding is always up, in the merchant's
 * favour by at most one unit.
 */

export interface CustomCreditPricing {
  unitPriceCents: number;
  minCredits: number;
  maxCredits: number;
  currency: string;
  fee: CardFee | null;
}

export interface CardFee {
  /** The percentage part in basis points: 2.9 % is 290. */
  percentBps: number;
  fixedCents: number;
}

const refuse = (message: string) => errors.invalidValue('credits', message);

const ceilDiv = (numerator: bigint, denominator: bigint) => (numerator + denominator - 1n) / denominator;

function toCents(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse('amount too large');
  return Number(value);
}

/**
 * The smallest amount A such that A − (A × percent + fixed) ≥ net, i.e.
 * A = ⌈(net + fixed) / (1 − percent)⌉.
 */
export function grossUpForCardFee(netCents: number, fee: CardFee): number {
  if (fee.percentBps < 0 || fee.percentBps >= 10_000) throw refuse('fee percentage must be below 100 %');
  const numerator = (BigInt(netCents) + BigInt(fee.fixedCents)) * 10_000n;
  return toCents(ceilDiv(numerator, BigInt(10_000 - fee.percentBps)));
}

export function priceCustomCredits(
  credits: number,
  pricing: CustomCreditPricing,
): { amountCents: number; netCents: number; currency: string } {
  if (!Number.isSafeInteger(credits) || credits < pricing.minCredits || credits > pricing.maxCredits) {
    throw refuse(`credits must be a whole number from ${pricing.minCredits} to ${pricing.maxCredits}`);
  }
  const netCents = toCents(BigInt(credits) * BigInt(pricing.unitPriceCents));
  const amountCents = pricing.fee ? grossUpForCardFee(netCents, pricing.fee) : netCents;
  return { amountCents, netCents, currency: pricing.currency };
}
