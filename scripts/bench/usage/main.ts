import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isUsageMistake, UsageError } from '../../../cli/usage-error';
import { debitCredits, recordUsage } from '../../../credits/index';
import { Random } from '../../chaos/random';
import { ProcessSampler, type ProcessUsage } from '../measure';
import { call, closedLoop, openLoop, type Measured } from './drivers';
import { debitFloor, perEventFloor, pipelinedDebitFloor, prepareFloors, setBasedFloor } from './floors';
import { BENCH_API_KEY, UsageBenchStack } from './stack';
import {
  buildBatches,
  BENCH_FEATURE,
  engineEvents,
  seedAccounts,
  storeHistory,
  usageBody,
  type BenchEvent,
} from './workload';

/**
 * `npm run bench:usage`: the usage path (POST /v1/usage), single debits and the check, each
 * through the service's API process beside the raw floors through postgres.js, in one run on one
 * PostgreSQL, so that every ratio is measured together. A benchmark, never a test: it prints
 * figures and the targets beside them, and fails only when a request failed. See
 * docs/benchmarks/usage.md for what it measured here.
 */

const USAGE = `usage: npm run bench:usage -- [options]

Starts PostgreSQL (the settings of npm run dev's) and the API process, funds accounts through the
credit engine, then measures in turn, each on the same batches:
  usage    POST /v1/usage, and the per-event and set-based floors (one transaction per batch,
           UNIQUE (account, event ID)); across --accounts accounts, then one hot account
  debits   POST /v1/accounts/:id/debits, and one PostgreSQL transaction per debit; one account,
           then one account per client
  check    POST /v1/check, open loop at --check-rate for --check-seconds
With --grown, stores --grown-events usage events and --grown-ledger ledger rows, then measures
the service again. Everything is thrown away at the end unless --keep.

  --events N            usage events per scenario (default 100000)
  --batch N             events per request (default 500)
  --clients N           concurrent usage requests (default 8)
  --accounts N          accounts of the spread scenario (default 1000)
  --debits N            debits per scenario (default 4000)
  --debit-clients N     concurrent debits, and accounts of the spread debit scenario (default 20)
  --check-rate R        checks per second (default 500)
  --check-seconds S     seconds of checks (default 10)
  --phases LIST         any of usage,debits,check (default all)
  --grown               measure again with history stored
  --grown-events N      (default 10000000)
  --grown-ledger N      (default 1000000)
  --database-url URL    measure on this PostgreSQL (e.g. npm run dev's) instead of starting one
  --fsync on|off        the started PostgreSQL flushes at each commit (on, as npm run dev) or not
                        (default on)
  --no-per-event        leave out the per-event floor (the slowest part: minutes per scenario)
  --direct              also call the credit engine in this process, without HTTP (recordUsage,
                        debitCredits): what the engine's transactions cost apart from the API's;
                        and a debit floor with BEGIN and COMMIT pipelined (two round trips)
  --seed N              the workload's seed (default 1)
  --profile             write a V8 CPU profile of the API process into the run's directory
  --keep                keep the run's directory (logs, data, profiles)
  --json-file FILE      also write every figure as JSON
  -h, --help            this help
`;

interface Options {
  events: number;
  batch: number;
  clients: number;
  accounts: number;
  debits: number;
  debitClients: number;
  checkRate: number;
  checkSeconds: number;
  phases: Set<string>;
  grown: boolean;
  grownEvents: number;
  grownLedger: number;
  databaseUrl: string | null;
  fsync: boolean;
  seed: number;
  direct: boolean;
  perEvent: boolean;
  profile: boolean;
  keep: boolean;
  jsonFile: string | null;
}

function count(value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}`);
  return parsed;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      events: { type: 'string' },
      batch: { type: 'string' },
      clients: { type: 'string' },
      accounts: { type: 'string' },
      debits: { type: 'string' },
      'debit-clients': { type: 'string' },
      'check-rate': { type: 'string' },
      'check-seconds': { type: 'string' },
      phases: { type: 'string' },
      grown: { type: 'boolean', default: false },
      'grown-events': { type: 'string' },
      'grown-ledger': { type: 'string' },
      'database-url': { type: 'string' },
      fsync: { type: 'string', default: 'on' },
      seed: { type: 'string' },
      direct: { type: 'boolean', default: false },
      'no-per-event': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'json-file': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  const phases = new Set((values.phases ?? 'usage,debits,check').split(',').filter(Boolean));
  for (const phase of phases) {
    if (!['usage', 'debits', 'check'].includes(phase)) throw new UsageError(`unknown phase ${phase}`);
  }
  if (values.fsync !== 'on' && values.fsync !== 'off') throw new UsageError('--fsync is on or off');
  const batch = count(values.batch, 'batch', 500);
  if (batch > 1000) throw new UsageError('--batch is at most 1000 (the API takes no more per request)');
  return {
    events: count(values.events, 'events', 100_000),
    batch,
    clients: count(values.clients, 'clients', 8),
    accounts: count(values.accounts, 'accounts', 1000),
    debits: count(values.debits, 'debits', 4000),
    debitClients: count(values['debit-clients'], 'debit-clients', 20),
    checkRate: count(values['check-rate'], 'check-rate', 500),
    checkSeconds: count(values['check-seconds'], 'check-seconds', 10),
    phases,
    grown: values.grown,
    grownEvents: count(values['grown-events'], 'grown-events', 10_000_000, 0),
    grownLedger: count(values['grown-ledger'], 'grown-ledger', 1_000_000, 0),
    databaseUrl: values['database-url'] ?? null,
    fsync: values.fsync === 'on',
    seed: count(values.seed, 'seed', 1, 0),
    direct: values.direct,
    perEvent: !values['no-per-event'],
    profile: values.profile,
    keep: values.keep,
    jsonFile: values['json-file'] ?? null,
  };
}

// --- figures --------------------------------------------------------------------------------

interface Figure {
  name: string;
  unit: 'events/s' | 'debits/s' | 'ms';
  value: number;
  p50Ms?: number;
  p99Ms?: number;
  errors: Record<string, number>;
  cpu?: Record<string, ProcessUsage>;
  statements?: Array<{ calls: number; meanMs: number; totalMs: number; query: string }>;
}

const perSecond = (measured: Measured, units: number) => Math.round(units / measured.seconds);

interface Run {
  stack: UsageBenchStack;
  options: Options;
  random: Random;
  progress: (line: string) => void;
  figures: Figure[];
}

async function topStatements(run: Run): Promise<Figure['statements']> {
  try {
    const rows = await run.stack.sql<{ calls: string; mean: string; total: string; query: string }[]>`
      SELECT calls::text, mean_exec_time::text AS mean, total_exec_time::text AS total, query
      FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'
      ORDER BY total_exec_time DESC LIMIT 8`;
    return rows.map((row) => ({
      calls: Number(row.calls),
      meanMs: Math.round(Number(row.mean) * 100) / 100,
      totalMs: Math.round(Number(row.total)),
      query: row.query.replace(/\s+/g, ' ').slice(0, 140),
    }));
  } catch {
    return undefined;
  }
}

/**
 * Runs `go` with the CPU of the API process, PostgreSQL and the benchmark itself sampled (the
 * benchmark without its children: the API process and PostgreSQL are its children, and the
 * sampler counts a process with its children).
 */
async function sampled(run: Run, go: () => Promise<Measured>) {
  const sampler = new ProcessSampler(run.stack.pids());
  const ownCpu = process.cpuUsage();
  const ownStarted = performance.now();
  sampler.start();
  const measured = await go();
  const cpu = sampler.stop();
  const own = process.cpuUsage(ownCpu);
  cpu.bench = {
    cpuPercent: Math.round(((own.user + own.system) / 1000 / (performance.now() - ownStarted)) * 1000) / 10,
    rssMaxMb: Math.round(process.memoryUsage().rss / 1024 / 1024),
  };
  return { measured, cpu };
}

/**
 * Runs one measured phase, the service's or a floor's, with CPU sampled and statement statistics
 * reset before and read after (the profile the report prints).
 */
async function measure(
  run: Run,
  name: string,
  units: number,
  unit: Figure['unit'],
  go: () => Promise<Measured>,
) {
  await run.stack.sql`SELECT pg_stat_statements_reset()`.catch(() => {});
  const { measured, cpu } = await sampled(run, go);
  const figure: Figure = {
    name,
    unit,
    value: perSecond(measured, units),
    p50Ms: measured.latency.p50,
    p99Ms: measured.latency.p99,
    errors: measured.errors,
    cpu,
    statements: await topStatements(run),
  };
  run.figures.push(figure);
  run.progress(
    unit === 'ms'
      ? `${name}: p50 ${figure.p50Ms} ms, p99 ${figure.p99Ms} ms`
      : `${name}: ${figure.value} ${unit} (p99 ${figure.p99Ms} ms)`,
  );
  return figure;
}

// --- phases ---------------------------------------------------------------------------------

const sumOf = (batches: readonly BenchEvent[][]) => batches.reduce((total, batch) => total + batch.length, 0);

async function usagePhase(run: Run, accounts: string[], scenario: string, floors: boolean): Promise<void> {
  const { options, stack } = run;
  const build = (label: string) =>
    buildBatches(run.random, { events: options.events, size: options.batch, accounts, label });
  const service = build(`svc-${scenario}-${Date.now()}`);
  const bodies = service.map(usageBody);
  const units = sumOf(service);
  // A few unmeasured requests first: connections, prepared statements, JIT.
  const warm = buildBatches(run.random, {
    events: options.batch * 4,
    size: options.batch,
    accounts,
    label: `warm-${Date.now()}`,
  });
  await closedLoop(warm.map(usageBody), options.clients, async (body) => {
    await call(stack.apiUrl, BENCH_API_KEY, 'POST', '/v1/usage', body, 200);
  });
  await measure(run, `usage ${scenario}: service (HTTP)`, units, 'events/s', () =>
    closedLoop(bodies, options.clients, async (body) => {
      const answer = (await call(stack.apiUrl, BENCH_API_KEY, 'POST', '/v1/usage', body, 200)) as {
        accepted: number;
        results: unknown[];
      };
      if (answer.accepted !== answer.results.length) throw new Error('an event was not accepted');
    }),
  );
  if (options.direct) {
    const direct = build(`eng-${scenario}-${Date.now()}`);
    await measure(run, `usage ${scenario}: engine in-process`, sumOf(direct), 'events/s', () =>
      closedLoop(direct, options.clients, async (batch) => {
        const { outcomes } = await recordUsage(stack.sql, engineEvents(batch));
        if (outcomes.some((outcome) => outcome.status !== 'accepted'))
          throw new Error('an event was not accepted');
      }),
    );
  }
  if (!floors) return;
  const setBased = build(`set-${scenario}`);
  await measure(run, `usage ${scenario}: floor set-based`, sumOf(setBased), 'events/s', () =>
    closedLoop(setBased, options.clients, (batch) => setBasedFloor(stack.sql, batch)),
  );
  if (!options.perEvent) return;
  const perEvent = build(`one-${scenario}`);
  await measure(run, `usage ${scenario}: floor per-event`, sumOf(perEvent), 'events/s', () =>
    closedLoop(perEvent, options.clients, (batch) => perEventFloor(stack.sql, batch)),
  );
}

async function debitPhase(run: Run, accounts: string[], scenario: string, floors: boolean): Promise<void> {
  const { options, stack } = run;
  const stamp = Date.now();
  const keys = Array.from(
    { length: options.debits },
    (_, i) => `${scenario.replaceAll(' ', '-')}-${stamp}-${i}`,
  );
  const accountOf = (client: number) => accounts[client % accounts.length] ?? '';
  await measure(run, `debits ${scenario}: service (HTTP)`, keys.length, 'debits/s', () =>
    closedLoop(keys, options.debitClients, async (key, client) => {
      await call(
        stack.apiUrl,
        BENCH_API_KEY,
        'POST',
        `/v1/accounts/${accountOf(client)}/debits`,
        JSON.stringify({ amount: 1, idempotencyKey: key, reason: 'benchmark' }),
        201,
      );
    }),
  );
  if (options.direct) {
    await measure(run, `debits ${scenario}: engine in-process`, keys.length, 'debits/s', () =>
      closedLoop(keys, options.debitClients, async (key, client) => {
        await debitCredits(stack.sql, {
          accountId: accountOf(client),
          amount: 1,
          idempotencyKey: `direct-${key}`,
          reason: 'benchmark',
        });
      }),
    );
  }
  if (!floors) return;
  await measure(run, `debits ${scenario}: floor (one transaction each)`, keys.length, 'debits/s', () =>
    closedLoop(keys, options.debitClients, (key, client) => debitFloor(stack.sql, accountOf(client), key)),
  );
  if (options.direct) {
    await measure(run, `debits ${scenario}: floor pipelined (2 round trips)`, keys.length, 'debits/s', () =>
      closedLoop(keys, options.debitClients, (key, client) =>
        pipelinedDebitFloor(stack.sql, accountOf(client), `p-${key}`),
      ),
    );
  }
}

async function checkPhase(run: Run, accounts: string[], scenario: string): Promise<void> {
  const { options, stack } = run;
  const bodies = Array.from({ length: options.checkRate * options.checkSeconds }, () =>
    JSON.stringify({
      accountId: run.random.pick(accounts),
      feature: BENCH_FEATURE,
      quantity: run.random.int(1, 4000),
    }),
  );
  // Unmeasured first: the client's sockets opened, the statement prepared on every pooled
  // connection, the code warm. A steady rate's latency is what is measured, not a cold start's.
  const warmUp = Math.max(1, Math.round(options.checkSeconds / 5));
  await openLoop(options.checkRate, warmUp, async (index) => {
    await call(stack.apiUrl, BENCH_API_KEY, 'POST', '/v1/check', bodies[index] ?? '', 200);
  });
  await measure(
    run,
    `check ${scenario}: service (HTTP), open loop ${options.checkRate}/s`,
    bodies.length,
    'ms',
    () =>
      openLoop(options.checkRate, options.checkSeconds, async (index) => {
        await call(stack.apiUrl, BENCH_API_KEY, 'POST', '/v1/check', bodies[index] ?? '', 200);
      }),
  );
}

async function measureAll(run: Run, sets: AccountSets, scenario: string, floors: boolean): Promise<void> {
  const { phases, accounts } = run.options;
  if (phases.has('usage')) {
    await usagePhase(run, sets.spread, `${accounts} accounts${scenario}`, floors);
    await usagePhase(run, sets.hot, `1 account${scenario}`, floors);
  }
  if (phases.has('debits')) {
    await debitPhase(run, sets.hotDebit, `1 account${scenario}`, floors);
    await debitPhase(run, sets.debit, `${sets.debit.length} accounts${scenario}`, floors);
  }
  if (phases.has('check')) await checkPhase(run, sets.spread, `${accounts} accounts${scenario}`);
}

interface AccountSets {
  spread: string[];
  hot: string[];
  debit: string[];
  hotDebit: string[];
}

// --- the report -----------------------------------------------------------------------------

const TARGETS: Array<{ figure: RegExp; floor: RegExp | null; text: string }> = [
  {
    figure: /^usage \d+ accounts: service/,
    floor: /^usage \d+ accounts: floor set-based/,
    text: '≥ 28,000 events/s and ≥ 0.5× set-based',
  },
  {
    figure: /^usage 1 account: service/,
    floor: /^usage 1 account: floor set-based/,
    text: '≥ 10,000 events/s',
  },
  {
    figure: /^debits 1 account: service/,
    floor: /^debits 1 account: floor/,
    text: '≥ 1,000/s and ≥ 0.5× floor (today 426/s)',
  },
  {
    figure: /^debits \d+ accounts: service/,
    floor: /^debits \d+ accounts: floor/,
    text: '≥ 2,900/s and ≥ 0.5× floor (today 934/s)',
  },
  { figure: /^check .*: service/, floor: null, text: 'p99 ≤ 5 ms' },
];

function report(figures: readonly Figure[], options: Options, load: string): string {
  const lines = [`bench:usage, ${os.cpus().length} CPUs, Node ${process.version}, ${load}`];
  lines.push(
    `batches of ${options.batch}, ${options.clients} clients; debits with ${options.debitClients} clients; ` +
      `PostgreSQL ${options.databaseUrl ? 'given by URL' : `own, fsync ${options.fsync ? 'on' : 'off'}`}`,
  );
  const find = (pattern: RegExp, grown: boolean) =>
    figures.find((f) => pattern.test(f.name.replace(', grown', '')) && f.name.includes(', grown') === grown);
  for (const figure of figures) {
    const value =
      figure.unit === 'ms'
        ? `p50 ${figure.p50Ms} ms, p99 ${figure.p99Ms} ms`
        : `${figure.value.toLocaleString('en-US')} ${figure.unit}`;
    const errors = Object.keys(figure.errors).length > 0 ? `  ERRORS ${JSON.stringify(figure.errors)}` : '';
    const cpu = figure.cpu
      ? `  cpu ${Object.entries(figure.cpu)
          .map(([name, use]) => `${name} ${use.cpuPercent}%`)
          .join(', ')}`
      : '';
    lines.push(
      `  ${figure.name.padEnd(52)} ${value.padStart(22)}${figure.unit === 'ms' ? '' : `  p99 ${figure.p99Ms} ms`}${cpu}${errors}`,
    );
  }
  lines.push('ratios and targets:');
  for (const grown of [false, true]) {
    for (const target of TARGETS) {
      const figure = find(target.figure, grown);
      if (!figure) continue;
      const floor = target.floor ? find(target.floor, false) : undefined;
      const ratio = floor ? ` = ${(figure.value / floor.value).toFixed(2)}× ${floor.name}` : '';
      const base = grown ? find(target.figure, false) : undefined;
      const growth = base
        ? figure.unit === 'ms'
          ? ` (p99 ${((figure.p99Ms ?? 0) / (base.p99Ms ?? 1)).toFixed(2)}× the first run)`
          : ` (${(base.value / figure.value).toFixed(2)}× the first run's time per unit; target ≤ 1.25×)`
        : '';
      const shown =
        figure.unit === 'ms'
          ? `p99 ${figure.p99Ms} ms`
          : `${figure.value.toLocaleString('en-US')} ${figure.unit}`;
      lines.push(`  ${figure.name}: ${shown}${ratio}; target ${target.text}${growth}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

// --- main -----------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!isUsageMistake(error)) throw error;
    process.stderr.write(`${error.message}\nsee: npm run bench:usage -- --help\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }
  const began = Date.now();
  const progress = (line: string) =>
    process.stderr.write(`[bench:usage ${((Date.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'credits-bench-usage-'));
  const load = `load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} at the start`;
  const stack = new UsageBenchStack({
    workDir,
    databaseUrl: options.databaseUrl,
    fsync: options.fsync,
    profileDir: options.profile ? path.join(workDir, 'profiles') : null,
    progress,
  });
  const stop = () => {
    void stack.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await stack.start();
    const run: Run = {
      stack,
      options,
      random: new Random(options.seed, 'bench-usage'),
      progress,
      figures: [],
    };
    const tag = `b${Date.now().toString(36)}`;
    const ids = (name: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}_${name}_${i}`);
    const sets: AccountSets = {
      spread: ids('spread', options.accounts),
      hot: ids('hot', 1),
      debit: ids('debit', options.debitClients),
      hotDebit: ids('hotdebit', 1),
    };
    const all = [...sets.spread, ...sets.hot, ...sets.debit, ...sets.hotDebit];
    const credits = 1_000_000_000_000;
    await seedAccounts(stack.sql, all, credits);
    await prepareFloors(stack.sql, all, credits);
    progress(`${all.length} accounts funded`);

    await measureAll(run, sets, '', true);
    if (options.grown) {
      await storeHistory(
        stack.sql,
        all,
        { events: options.grownEvents, ledgerRows: options.grownLedger },
        progress,
      );
      await measureAll(run, sets, ', grown', false);
    }
    const text = report(run.figures, options, load);
    process.stdout.write(text);
    if (options.jsonFile) {
      writeFileSync(
        options.jsonFile,
        `${JSON.stringify({ options: { ...options, phases: [...options.phases] }, load, figures: run.figures }, null, 2)}\n`,
      );
    }
    const failed = run.figures.some((figure) => Object.keys(figure.errors).length > 0);
    return failed ? 1 : 0;
  } finally {
    await stack.stop();
    if (options.keep || options.profile) progress(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
