import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createCreditsClient, ok } from '../client/index';
import { parseApiKeys } from '../config/env';
import { checkoutSession, deliverEvent, stripeEvent } from '../stripe/fixtures/index';
import { assertLocalTarget, runPool, summarizeLatencies } from './bench-support';

/**
 * Debit throughput of a running API: N debits of 1 credit from C concurrent clients, first all
 * on one account (every debit contends for the same balance row), then spread over C accounts.
 * Accounts are funded through the real purchase path (signed webhooks), then drained by debits.
 */

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.API_URL ?? 'http://127.0.0.1:3000' },
    'api-key': { type: 'string', default: parseApiKeys(process.env.BILLING_API_KEYS)[0]?.secret },
    secret: { type: 'string', default: process.env.STRIPE_WEBHOOK_SECRET?.split(',')[0]?.trim() },
    debits: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    'allow-remote': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || !values['api-key'] || !values.secret) {
  process.stdout.write(
    'usage: npm run bench:debits -- [--url http://127.0.0.1:3000] --api-key KEY --secret whsec_… [--debits 2000] [--concurrency 20]\n' +
      '  (defaults: $API_URL, the first of $BILLING_API_KEYS and of $STRIPE_WEBHOOK_SECRET)\n',
  );
  process.exit(values.help ? 0 : 2);
}

const baseUrl = values.url;
const apiKey = values['api-key'];
const secret = values.secret;
const totalDebits = Number(values.debits);
const concurrency = Number(values.concurrency);
assertLocalTarget(baseUrl, values['allow-remote']);

const PACK = { id: 'scale', credits: 1200, priceCents: 9000 };

const api = createCreditsClient({ baseUrl, apiKey });

/** A new account holding at least `credits`, bought through signed purchase events. */
async function fundedAccount(credits: number): Promise<string> {
  const id = `bench_${randomUUID()}`;
  await ok(api.POST('/v1/accounts', { body: { id, email: `${id}@bench.test` } }));
  const purchases = Math.ceil(credits / PACK.credits);
  for (let index = 0; index < purchases; index += 1) {
    const event = stripeEvent(
      'checkout.session.completed',
      checkoutSession({ accountId: id, packId: PACK.id, amountTotal: PACK.priceCents }),
    );
    const answer = await deliverEvent(`${baseUrl}/webhooks/stripe`, event, secret);
    if (answer.status !== 200)
      throw new Error(`funding ${id} failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  const deadline = Date.now() + 60_000;
  const balance = async () => (await ok(api.GET('/v1/accounts/{id}', { params: { path: { id } } }))).balance;
  while ((await balance()) < purchases * PACK.credits) {
    if (Date.now() > deadline)
      throw new Error(`account ${id} was not funded within 60 s: is the worker running?`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return id;
}

async function scenario(name: string, accounts: string[]): Promise<void> {
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const started = performance.now();
  await runPool(totalDebits, concurrency, async (index, worker) => {
    const accountId = accounts[worker % accounts.length] ?? '';
    const sent = performance.now();
    const { response } = await api.POST('/v1/accounts/{id}/debits', {
      params: { path: { id: accountId } },
      body: { amount: 1, idempotencyKey: `bench-${index}`, reason: 'benchmark' },
    });
    latencies.push(performance.now() - sent);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  });
  const seconds = (performance.now() - started) / 1000;
  const summary = summarizeLatencies(latencies);
  process.stdout.write(
    `${name}: ${totalDebits} debits, ${concurrency} clients, ${seconds.toFixed(2)} s → ` +
      `${Math.round(totalDebits / seconds)} debits/s; latency ms p50 ${summary.p50} p90 ${summary.p90} ` +
      `p99 ${summary.p99} max ${summary.max}; statuses ${JSON.stringify(Object.fromEntries(statuses))}\n`,
  );
}

async function main(): Promise<void> {
  process.stdout.write(`funding accounts at ${baseUrl} …\n`);
  const single = await fundedAccount(totalDebits);
  const spread = await Promise.all(
    Array.from({ length: concurrency }, () => fundedAccount(Math.ceil(totalDebits / concurrency))),
  );
  await scenario('one account', [single]);
  await scenario(`${concurrency} accounts`, spread);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
