import { toSafeInteger } from './integers';
/**
 * What usage costs. A feature's price is `credits` per `units` (1 credit per 1,000 tokens, 5
 * credits per image), and fractions are never rounded per event: each (account, feature, price)
 * keeps a meter of the units it used, and after every event the credits burned for it are
 * exactly floor(units × credits / units-per-price). So across any sequence of events the credits
 * burned equal the usage priced once, rounded down once: less than one credit short, never more.
 *
 * The arithmetic is in BigInt: a meter's units times a price may pass 2^53.
 */

/** What usage of a feature does when the available credits cannot pay for it. */
export type OverdraftPolicy = 'refuse' | 'allow';

export interface FeaturePrice {
  /** Credits charged per `units` units. */
  credits: number;
  units: number;
}

export interface Feature extends FeaturePrice {
  key: string;
  name: string;
  overdraft: OverdraftPolicy;
  active: boolean;
}

/**
 * Whether the price leaves fractions of a credit between events, so that a meter must carry
 * them. A price whose units divide its credits charges whole credits for every unit.
 */
export const accruesFractions = (price: FeaturePrice): boolean => price.credits % price.units !== 0;

/** The credits `units` units cost, rounded down: what a meter has burned after them. */
export function creditsForUnits(units: bigint, price: FeaturePrice): bigint {
  return (units * BigInt(price.credits)) / BigInt(price.units);
}

/**
 * The credits one more event of `quantity` units burns, on a meter that has counted `accrued`
 * units at this price before it: the whole credits its units complete, no more.
 */
export function creditsForEvent(accrued: bigint, quantity: bigint, price: FeaturePrice): bigint {
  return creditsForUnits(accrued + quantity, price) - creditsForUnits(accrued, price);
}

/** A feature as the `features` table stores it (bigint columns as text). */
export interface FeatureRow {
  key: string;
  name: string;
  credits: string;
  units: string;
  overdraft: Feature['overdraft'];
  active: boolean;
}

/** A stored feature, its bigint columns checked to be safe integers. */
export const featureFromRow = (row: FeatureRow): Feature => ({
  key: row.key,
  name: row.name,
  credits: toSafeInteger(row.credits, 'feature credits'),
  units: toSafeInteger(row.units, 'feature units'),
  overdraft: row.overdraft,
  active: row.active,
});
