import { parseArgs } from 'node:util';
import { webhookSecretFrom, webhookUrlFrom } from '../send-event/options';
import { DEFAULT_LOCAL_STRIPE_PORT, localStripeRefusal } from './decision';
import { StripeStandIn } from './stand-in';

/**
 * `npm run local-stripe`: Stripe for development, on 127.0.0.1, with no account and no network.
 * `npm run dev` runs it when no Stripe key is set; run it alone beside an API and worker of your
 * own, which reach it with STRIPE_SECRET_KEY=sk_test_… (any test-mode key) and
 * STRIPE_API_BASE_URL=http://127.0.0.1:4242. Stripe's API is under /v1/, each request checked by
 * Stripe's stripe-mock; a checkout session's `url` opens its checkout page here, whose buttons send
 * Stripe's signed events to the webhook. Refuses to start in production or beside a live key.
 */

const USAGE = `usage: npm run local-stripe -- [--port N] [--url WEBHOOK_URL] [--secret whsec_…]
  --port N        where it listens (default: $DEV_STRIPE_PORT, else ${DEFAULT_LOCAL_STRIPE_PORT})
  --url URL       the webhook its checkout pages send events to (default: $WEBHOOK_URL, else the dev stack's)
  --secret whsec  the signing secret (default: the first of $STRIPE_WEBHOOK_SECRET, else the dev stack's)`;

/** Exit codes: 64 bad arguments, 78 refused by the configuration (EX_USAGE, EX_CONFIG). */
function fail(code: number, message: string): never {
  process.stderr.write(`local Stripe: ${message}\n`);
  process.exit(code);
}

function portFrom(flag: string | undefined): number {
  const raw = flag ?? (process.env.DEV_STRIPE_PORT || String(DEFAULT_LOCAL_STRIPE_PORT));
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) fail(64, `${raw} is not a port number\n${USAGE}`);
  return port;
}

async function main(): Promise<void> {
  const refusal = localStripeRefusal(process.env);
  if (refusal) fail(78, `refused to start: ${refusal}`);
  let values: { port?: string; url?: string; secret?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        url: { type: 'string' },
        secret: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    fail(64, `${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const webhook = { url: webhookUrlFrom(values.url), secret: webhookSecretFrom(values.secret) };
  const standIn = await StripeStandIn.start({
    port: portFrom(values.port),
    webhook,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  // The secret is never printed: it may be a real test endpoint's.
  process.stdout.write(
    `local Stripe on ${standIn.url}: the API under /v1/ (checked by stripe-mock), checkout pages at ` +
      `/c/pay/<session>; their events go to ${webhook.url}\n`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    standIn.stop().then(
      () => process.exit(0),
      (error: unknown) => fail(1, `stopping: ${error instanceof Error ? error.message : String(error)}`),
    );
  };
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, stop);
}

main().catch((error: unknown) => fail(1, error instanceof Error ? error.message : String(error)));
