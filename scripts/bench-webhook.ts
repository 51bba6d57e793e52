import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createCreditsClient } from '../client/index';
import { parseApiKeys } from '../config/env';
import { loadPackCatalog } from '../db/catalog/packs';
import { checkoutSession, stripeEvent, webhookRequest } from '../stripe/fixtures/index';
import { assertLocalTarget, runPool, summarizeLatencies } from './bench-support';
import { webhookSecretFrom, webhookUrlFrom } from './send-event/options';
import { isUsageMistake, UsageError } from '../cli/usage-error';

/**
 * Acknowledgement latency of a running webhook: N distinct, valid, signed purchase events sent C
 * at a time, each timed from the request to the end of the answer (signature check, routing, and
 * Temporal accepting the workflow: what Stripe waits for). With --wait-for-grants it then polls
 * the account until every started purchase has been credited, to show how long the worker takes
 * to drain the backlog.
 *
 *   npm run bench:webhook -- --count 1000 --concurrency 20
 */

const USAGE = `usage: npm run bench:webhook -- [options]

Sends N distinct signed purchase events (checkout.session.completed, paid) C at a time to a
running webhook and reports how fast it acknowledges them.

  -n, --count N        events to send (default: 1000)
  -c, --concurrency C  requests in flight at once (default: 20)
  --url URL            the webhook (default: $WEBHOOK_URL, else http://127.0.0.1:3000/webhooks/stripe)
  --secret whsec_…     signing secret (default: the first of $STRIPE_WEBHOOK_SECRET, else the dev stack's)
  --api-key KEY        an API key (default: the first of $BILLING_API_KEYS): a fresh account is
                       created for the run, and balances can be read
  --account ID         credit this existing account instead (default without an API key: demo)
  --pack ID            the pack every event buys (default: starter)
  --wait-for-grants    after sending, poll GET /v1/accounts/:id until every started purchase is
                       credited (needs an API key), and report the time to drain
  --wait-timeout S     give up waiting after S seconds (default: 600)
  --timeout MS         a request unanswered after MS counts as an error (default: 30000)
  --allow-remote       allow a target other than localhost / 127.0.0.1 / ::1
  --json               print the result as JSON
  -h, --help           this help
`;

const MAX_EVENTS = 1_000_000;
const MAX_CONCURRENCY = 1_000;

interface Options {
  count: number;
  concurrency: number;
  webhookUrl: string;
  apiBase: string;
  secret: string;
  apiKey: string | undefined;
  account: string | undefined;
  packId: string;
  waitForGrants: boolean;
  waitTimeoutMs: number;
  requestTimeoutMs: number;
  json: boolean;
}

function integer(value: string, name: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return parsed;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      count: { type: 'string', short: 'n', default: '1000' },
      concurrency: { type: 'string', short: 'c', default: '20' },
      url: { type: 'string' },
      secret: { type: 'string' },
      'api-key': { type: 'string' },
      account: { type: 'string' },
      pack: { type: 'string', default: 'starter' },
      'wait-for-grants': { type: 'boolean', default: false },
      'wait-timeout': { type: 'string', default: '600' },
      timeout: { type: 'string', default: '30000' },
      'allow-remote': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;

  const webhookUrl = webhookUrlFrom(values.url);
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(webhookUrl);
  } catch {
    throw new UsageError(`--url is not a URL: ${webhookUrl}`);
  }
  try {
    assertLocalTarget(webhookUrl, values['allow-remote']);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const apiKey = values['api-key'] ?? parseApiKeys(process.env.BILLING_API_KEYS)[0]?.secret;
  if (values['wait-for-grants'] && !apiKey) {
    throw new UsageError(
      '--wait-for-grants reads the balance through the API: give --api-key or $BILLING_API_KEYS',
    );
  }
  return {
    count: integer(values.count, 'count', 1, MAX_EVENTS),
    concurrency: integer(values.concurrency, 'concurrency', 1, MAX_CONCURRENCY),
    webhookUrl,
    apiBase: parsedUrl.origin,
    secret: webhookSecretFrom(values.secret),
    apiKey,
    account: values.account ?? (apiKey ? undefined : 'demo'),
    packId: values.pack,
    waitForGrants: values['wait-for-grants'],
    waitTimeoutMs: integer(values['wait-timeout'], 'wait-timeout', 1, 86_400) * 1000,
    requestTimeoutMs: integer(values.timeout, 'timeout', 1, 600_000),
    json: values.json,
  };
}

/** The API's typed client, each request bounded by the request timeout. */
function apiOf(options: Options) {
  return createCreditsClient({
    baseUrl: options.apiBase,
    apiKey: options.apiKey ?? '',
    fetch: (request) => fetch(request, { signal: AbortSignal.timeout(options.requestTimeoutMs) }),
  });
}

async function balanceOf(options: Options, accountId: string): Promise<number> {
  const { data, error, response } = await apiOf(options).GET('/v1/accounts/{id}', {
    params: { path: { id: accountId } },
  });
  if (!data)
    throw new Error(`GET /v1/accounts/${accountId} answered ${response.status} ${JSON.stringify(error)}`);
  return data.balance;
}

/** The account to credit: the one named, or a fresh one made through the API. */
async function prepareAccount(options: Options): Promise<{ id: string; created: boolean }> {
  if (options.account) return { id: options.account, created: false };
  const id = `bench_${randomUUID()}`;
  const { error, response } = await apiOf(options).POST('/v1/accounts', {
    body: { id, email: `${id}@bench.invalid` },
  });
  if (response.status !== 201) {
    throw new Error(`POST /v1/accounts answered ${response.status} ${JSON.stringify(error)}`);
  }
  return { id, created: true };
}

interface Sample {
  ms: number;
  /** HTTP status, or the network error's code. */
  outcome: string;
  answer: string | null;
}

async function sendOne(options: Options, payload: string): Promise<Sample> {
  const started = performance.now();
  try {
    const response = await fetch(options.webhookUrl, {
      ...webhookRequest(payload, options.secret),
      signal: AbortSignal.timeout(options.requestTimeoutMs),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    // What the webhook said: started | duplicate | ignored, or the error code.
    let answer = 'unparsed';
    try {
      const body = JSON.parse(text) as { status?: unknown; error?: { code?: unknown } };
      if (typeof body.status === 'string') answer = body.status;
      else if (typeof body.error?.code === 'string') answer = body.error.code;
    } catch {
      // not JSON: keep 'unparsed'
    }
    return { ms, outcome: String(response.status), answer };
  } catch (error) {
    const err = error as Error & { cause?: { code?: string } };
    return { ms: performance.now() - started, outcome: err.cause?.code ?? err.name, answer: null };
  }
}

function tally(items: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function main(argv: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!isUsageMistake(error)) throw error;
    process.stderr.write(`${error.message}\nsee: npm run bench:webhook -- --help\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }
  const pack = loadPackCatalog().packs.find((candidate) => candidate.id === options.packId);
  if (!pack) {
    process.stderr.write(`pack ${options.packId} is not in config/catalog/packs.json\n`);
    return 2;
  }
  const log = (line: string) => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };

  const account = await prepareAccount(options);
  const balanceBefore = options.apiKey ? await balanceOf(options, account.id) : null;
  log(
    `${options.count} events, ${Math.min(options.concurrency, options.count)} at a time → ${options.webhookUrl}` +
      ` (account ${account.id}${account.created ? ', created' : ''}, pack ${pack.id})`,
  );

  // Built up front so that building JSON is not timed; each is signed when it is sent, as Stripe
  // does, so that a slow run cannot outlive the signature tolerance.
  const payloads = Array.from({ length: options.count }, () =>
    JSON.stringify(
      stripeEvent(
        'checkout.session.completed',
        checkoutSession({
          accountId: account.id,
          packId: pack.id,
          amountTotal: pack.priceCents,
          currency: pack.currency,
          metadata: { credits: String(pack.credits) },
        }),
      ),
    ),
  );

  const loadBefore = os.loadavg();
  const samples: Sample[] = new Array<Sample>(options.count);
  const started = performance.now();
  await runPool(options.count, options.concurrency, async (index) => {
    samples[index] = await sendOne(options, payloads[index] ?? '');
  });
  const totalMs = performance.now() - started;
  const loadAfter = os.loadavg();

  const ok = samples.filter((sample) => /^2\d\d$/.test(sample.outcome));
  const answers = tally(ok.map((sample) => sample.answer ?? 'none'));
  const result = {
    target: options.webhookUrl,
    account: account.id,
    pack: pack.id,
    count: options.count,
    concurrency: options.concurrency,
    acknowledged: ok.length,
    errors: options.count - ok.length,
    httpStatus: tally(samples.map((sample) => sample.outcome)),
    answers,
    totalMs: round(totalMs, 0),
    throughputPerSecond: round(options.count / (totalMs / 1000)),
    // Nearest-rank percentiles of the acknowledged (2xx) requests.
    latencyMs: summarizeLatencies(ok.map((sample) => sample.ms)),
    machine: {
      cpus: os.cpus().length,
      loadAverage1mBefore: round(loadBefore[0] ?? 0, 2),
      loadAverage1mAfter: round(loadAfter[0] ?? 0, 2),
      node: process.version,
    },
    drain: null as null | {
      expectedBalance: number;
      balance: number;
      drained: boolean;
      msAfterLastAck: number;
      msFromFirstSend: number;
    },
  };

  log(`acknowledged ${result.acknowledged}/${result.count}, errors ${result.errors}`);
  log(`http status  ${JSON.stringify(result.httpStatus)}`);
  log(`answers      ${JSON.stringify(result.answers)}`);
  log(`total        ${result.totalMs} ms, ${result.throughputPerSecond} events/s`);
  log(
    `latency ms   p50 ${result.latencyMs.p50}  p90 ${result.latencyMs.p90}  p99 ${result.latencyMs.p99}` +
      `  max ${result.latencyMs.max}  (nearest rank, over the ${result.latencyMs.count} acknowledged)`,
  );
  log(
    `machine      ${result.machine.cpus} CPUs, load ${result.machine.loadAverage1mBefore} → ` +
      `${result.machine.loadAverage1mAfter} (1 min), node ${result.machine.node}`,
  );
  const firstError = samples.find((sample) => !/^2\d\d$/.test(sample.outcome));
  if (firstError) log(`first error  ${firstError.outcome} ${firstError.answer ?? ''}`.trimEnd());

  let drained = true;
  if (options.waitForGrants && balanceBefore !== null) {
    const expectedBalance = balanceBefore + (answers.started ?? 0) * pack.credits;
    log(`waiting for the balance of ${account.id} to reach ${expectedBalance}…`);
    const deadline = Date.now() + options.waitTimeoutMs;
    let balance = await balanceOf(options, account.id);
    while (balance < expectedBalance && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      balance = await balanceOf(options, account.id);
    }
    const now = performance.now();
    drained = balance >= expectedBalance;
    result.drain = {
      expectedBalance,
      balance,
      drained,
      msAfterLastAck: round(now - (started + totalMs), 0),
      msFromFirstSend: round(now - started, 0),
    };
    log(
      drained
        ? `drained      balance ${balance} after ${result.drain.msAfterLastAck} ms past the last ` +
            `acknowledgement (${result.drain.msFromFirstSend} ms from the first send)` +
            (balance > expectedBalance
              ? `; ${balance - expectedBalance} more than expected: another writer?`
              : '')
        : `NOT drained  balance ${balance} of ${expectedBalance} after ${options.waitTimeoutMs / 1000} s`,
    );
  }
  if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return result.errors === 0 && drained ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      const err = error as Error & { cause?: { code?: string } };
      const hint = err.cause?.code ? ` (${err.cause.code}: is the API running?)` : '';
      process.stderr.write(`bench failed: ${err.message ?? String(error)}${hint}\n`);
      process.exitCode = 1;
    },
  );
}
