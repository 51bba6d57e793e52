import type { ParseArgsConfig } from 'node:util';
import type { PackCatalog } from '../../db/catalog/packs';
import type { PlanCatalog } from '../../db/catalog/plans';
import { DEV_WEBHOOK_SECRET, type StripeEvent } from '../../stripe/fixtures/index';

/** What every family of commands shares: the plan a command builds, and the flag readers. */

export const DEFAULT_WEBHOOK_URL = 'http://127.0.0.1:3000/webhooks/stripe';

/** The webhook URL: the flag, else $WEBHOOK_URL, else the dev stack's. */
export function webhookUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.WEBHOOK_URL || DEFAULT_WEBHOOK_URL);
}

/** The signing secret: the flag, else the first of $STRIPE_WEBHOOK_SECRET, else the dev stack's. */
export function webhookSecretFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = (env.STRIPE_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((secret) => secret.trim())
    .find((secret) => secret.length > 0);
  return flag ?? fromEnv ?? DEV_WEBHOOK_SECRET;
}

export type Values = Record<string, string | boolean | undefined>;

export type Options = NonNullable<ParseArgsConfig['options']>;

/** One event to deliver, `copies` times at once (more than one only to test deduplication). */
export interface Delivery {
  event: StripeEvent;
  copies: number;
  /** Wait this long before sending it (a delayed payment settling later). */
  delayMs?: number;
}

export interface Plan {
  sessionId: string | null;
  deliveries: Delivery[];
  /** A command to run afterwards, printed once everything was acknowledged. */
  next?: string;
  /** Follow-up commands (a renewal, a refund…), printed once everything was acknowledged. */
  notes?: string[];
}

/** The pack and plan catalogs (config/catalog/), read once per run. */
export interface Catalogs {
  packs: PackCatalog['packs'];
  plans: PlanCatalog['plans'];
}

export interface Subcommand {
  summary: string;
  /** Option lines of the help text. */
  help: string[];
  options: Options;
  build(values: Values, catalogs: Catalogs): Plan;
}

/** A flag that is missing or malformed: printed with a pointer to the command's help. */
export class UsageError extends Error {}

export const once = (event: StripeEvent): Delivery => ({ event, copies: 1 });

export function text(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function required(values: Values, name: string): string {
  const value = text(values, name);
  if (!value) throw new UsageError(`--${name} is required`);
  return value;
}

export function positiveInteger(values: Values, name: string, fallback: number): number {
  const value = text(values, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${name} must be a positive integer, got ${value}`);
  }
  return Number(value);
}

/** A whole number (0 included), else `fallback`; `meaning` completes the error: "--age is in seconds". */
export function wholeNumber(values: Values, name: string, fallback: number, meaning: string): number {
  const value = text(values, name) ?? String(fallback);
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} ${meaning}, got ${value}`);
  return Number(value);
}
