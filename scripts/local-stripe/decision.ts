/**
 * When the local Stripe runs. Never in production and never beside a live key: either refuses it
 * outright (the command exits, `npm run dev` says why in its log and banner). In development,
 * `npm run dev` runs it only when no Stripe key is configured: with a test key of your own,
 * checkout goes to your Stripe account instead.
 */

/** Where `npm run dev` serves the local Stripe unless DEV_STRIPE_PORT says otherwise (`off`: not at all). */
export const DEFAULT_LOCAL_STRIPE_PORT = 4242;

/**
 * The key the dev stack gives the API and the worker for the local Stripe. Published here, so it
 * is worth nothing: a test-mode key by its form, which the local Stripe accepts and Stripe never.
 */
export const LOCAL_STRIPE_SECRET_KEY = 'sk_test_localstripe0000000000000000';

/** A variable, with "" read as unset, as config/env.ts reads it. */
function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** Why the local Stripe may not run at all with this environment, or null when it may. */
export function localStripeRefusal(env: NodeJS.ProcessEnv): string | null {
  if (read(env, 'NODE_ENV') === 'production') {
    return 'NODE_ENV=production: the local Stripe never runs in production';
  }
  if (/^(sk|rk)_live_/.test(read(env, 'STRIPE_SECRET_KEY') ?? '')) {
    return 'STRIPE_SECRET_KEY is a live-mode key: the local Stripe never runs beside live mode';
  }
  return null;
}

export type LocalStripeDecision = { run: true } | { run: false; reason: string };

/** Whether `npm run dev` starts the local Stripe, and if not, the line that says why. */
export function localStripeDecision(env: NodeJS.ProcessEnv): LocalStripeDecision {
  const refusal = localStripeRefusal(env);
  if (refusal) return { run: false, reason: refusal };
  if (read(env, 'DEV_STRIPE_PORT') === 'off') return { run: false, reason: 'DEV_STRIPE_PORT=off' };
  if (read(env, 'STRIPE_SECRET_KEY')) {
    return { run: false, reason: 'STRIPE_SECRET_KEY is set: checkout goes to your Stripe account' };
  }
  return { run: true };
}
