import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import Stripe from 'stripe';
import { ConfigError, loadApiConfig, loadWorkerConfig } from '../../config/env';
import { freePort } from '../../scripts/local-services';
import { localStripeDecision, LOCAL_STRIPE_SECRET_KEY } from '../../scripts/local-stripe/decision';
import { StripeStandIn } from '../../scripts/local-stripe/stand-in';
import { createStripeClient } from '../../stripe/client';

/**
 * The local Stripe is for development only: production and live keys refuse it, wherever it
 * could be switched on (the dev stack's decision, its own command, the API's and the worker's
 * configuration, and the requests it answers).
 */

const ROOT = path.resolve(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const LIVE_KEY = 'sk_live_abc123';

/** `npm run local-stripe` with this environment: how it exited, what it said, and whether it listened. */
async function runLocalStripe(env: Record<string, string>) {
  const port = await freePort();
  const child = spawn(TSX, ['scripts/local-stripe/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env, DEV_STRIPE_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const listened = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => resolve(Boolean(socket.destroy())));
    socket.once('error', () => resolve(false));
  });
  return { code, stderr, listened };
}

function issuesOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}

const development = {
  NODE_ENV: 'development',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/credits',
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  STRIPE_WEBHOOK_SECRET: 'whsec_one',
  BILLING_API_KEYS: 'key_aaaaaaaaaaaaaaaa',
  SMTP_URL: 'smtp://127.0.0.1:1025',
  STRIPE_API_BASE_URL: 'http://127.0.0.1:4242',
};

describe('the local Stripe is never on in production', () => {
  it('when the dev stack has no Stripe key, then it runs the local Stripe; with a key, in production or turned off, it says why not', () => {
    expect(localStripeDecision({ NODE_ENV: 'development' })).toEqual({ run: true });
    expect(localStripeDecision({ NODE_ENV: 'development', STRIPE_SECRET_KEY: '' })).toEqual({ run: true });
    expect(localStripeDecision({ NODE_ENV: 'production' })).toEqual({
      run: false,
      reason: 'NODE_ENV=production: the local Stripe never runs in production',
    });
    expect(localStripeDecision({ STRIPE_SECRET_KEY: LIVE_KEY })).toEqual({
      run: false,
      reason: 'STRIPE_SECRET_KEY is a live-mode key: the local Stripe never runs beside live mode',
    });
    expect(localStripeDecision({ STRIPE_SECRET_KEY: 'rk_live_abc123' })).toMatchObject({ run: false });
    expect(localStripeDecision({ STRIPE_SECRET_KEY: 'sk_test_abc123' })).toEqual({
      run: false,
      reason: 'STRIPE_SECRET_KEY is set: checkout goes to your Stripe account',
    });
    expect(localStripeDecision({ DEV_STRIPE_PORT: 'off' })).toEqual({
      run: false,
      reason: 'DEV_STRIPE_PORT=off',
    });
  });

  it('when NODE_ENV=production, then the local Stripe command refuses to start, says why, and never listens', async () => {
    const run = await runLocalStripe({ NODE_ENV: 'production' });
    expect(run).toEqual({
      code: 78,
      stderr:
        'local Stripe: refused to start: NODE_ENV=production: the local Stripe never runs in production\n',
      listened: false,
    });
  });

  it('when the Stripe key is a live one, then the local Stripe command refuses to start, says why, and never listens', async () => {
    const run = await runLocalStripe({ NODE_ENV: 'development', STRIPE_SECRET_KEY: LIVE_KEY });
    expect(run).toEqual({
      code: 78,
      stderr:
        'local Stripe: refused to start: STRIPE_SECRET_KEY is a live-mode key: the local Stripe never runs beside live mode\n',
      listened: false,
    });
  });

  it('when the API or the worker would send Stripe requests to a local Stripe in production or with a live key, then it refuses to start', () => {
    const production = {
      ...development,
      NODE_ENV: 'production',
      STRIPE_SECRET_KEY: LIVE_KEY,
      TEMPORAL_PAYLOAD_KEYS: 'prod:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
    };
    const refusal = expect.stringMatching(/^STRIPE_API_BASE_URL: only for a local Stripe in development/);
    expect(issuesOf(() => loadApiConfig(production))).toEqual([refusal]);
    expect(issuesOf(() => loadWorkerConfig(production))).toEqual([refusal]);
    expect(issuesOf(() => loadApiConfig({ ...development, STRIPE_SECRET_KEY: LIVE_KEY }))).toEqual([
      'STRIPE_API_BASE_URL: only for a local Stripe in development: unset it with a live-mode key',
    ]);
    // What `npm run dev` gives the API and the worker is accepted.
    const dev = { ...development, STRIPE_SECRET_KEY: LOCAL_STRIPE_SECRET_KEY };
    expect(loadApiConfig(dev).stripe).toEqual({
      secretKey: LOCAL_STRIPE_SECRET_KEY,
      livemode: false,
      apiBaseUrl: 'http://127.0.0.1:4242',
    });
    expect(issuesOf(() => loadWorkerConfig(dev))).toEqual([]);
  });

  it('when a request to the local Stripe carries a live key, then it is refused and nothing is created', async () => {
    const stripe = await StripeStandIn.start();
    try {
      const live = createStripeClient({ secretKey: LIVE_KEY, apiBaseUrl: stripe.url })!;
      const refused = await live.customers
        .create({ email: 'a@example.com' })
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(Stripe.errors.StripeError);
      expect(refused).toMatchObject({
        statusCode: 401,
        message: expect.stringMatching(/never takes a live-mode key/),
      });
      const test = createStripeClient({ secretKey: LOCAL_STRIPE_SECRET_KEY, apiBaseUrl: stripe.url })!;
      await expect(test.customers.create({ email: 'a@example.com' })).resolves.toMatchObject({
        id: expect.stringMatching(/^cus_/),
      });
    } finally {
      await stripe.stop();
    }
  });
});
