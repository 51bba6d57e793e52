import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCreditsClient } from '../../client/index';
import { loadPackCatalog } from '../../db/catalog/packs';
import { saveCheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import { runPool } from '../bench-support';
import { checkRun } from './checks';
import { drain } from './drain';
import { planFaults, runFaults } from './faults';
import { parseChaosOptions, UsageError, USAGE, type ChaosOptions } from './options';
import type { ChaosReport } from './report';
import { formatReport } from './report';
import { sendPlan } from './sender';
import { ChaosStack } from './stack';
import { buildPlan, type Plan } from './workload';
import { DEVELOPMENT_PAYLOAD_KEYS } from '../../config/env';
import { PayloadKeyRing, temporalDataConverter } from '../../config/payload-codec';

/**
 * `npm run chaos`: the whole service as separate processes, under load and under faults, then
 * checked. See options.ts for the command line and docs/chaos.md for what it does.
 *
 *   npm run chaos -- --events 1500 --seed 1
 */

async function createAccounts(stack: ChaosStack, plan: Plan): Promise<void> {
  const api = createCreditsClient({
    baseUrl: `http://127.0.0.1:${stack.settings.apiPort}`,
    apiKey: stack.settings.apiKey,
  });
  await runPool(plan.accounts.length, 8, async (index) => {
    const account = plan.accounts[index];
    if (!account) return;
    const { error, response } = await api.POST('/v1/accounts', { body: account });
    if (response.status !== 201) {
      throw new Error(`POST /v1/accounts answered ${response.status} ${JSON.stringify(error)}`);
    }
  });
  // What POST /v1/checkout/sessions stores when it creates the Stripe session (Stripe is not
  // reachable here): the price snapshot the worker checks the payment against.
  const snapshots = plan.sales.flatMap((sale) => (sale.snapshot ? [sale.snapshot] : []));
  await runPool(snapshots.length, 4, async (index) => {
    const snapshot = snapshots[index];
    if (snapshot) await saveCheckoutSnapshot(stack.sql, snapshot);
  });
}

async function run(
  options: ChaosOptions,
  stack: ChaosStack,
  progress: (line: string) => void,
): Promise<ChaosReport> {
  const wallStart = Date.now();
  const plan = buildPlan({ events: options.events, seed: options.seed, catalog: loadPackCatalog() });
  const deliveries = plan.slots.reduce((total, slot) => total + slot.copies, 0);
  progress(
    `plan: ${plan.events.length} events for ${plan.sales.length} sessions of ${plan.accounts.length} accounts; ` +
      `${deliveries} deliveries (${plan.duplicateDeliveries} duplicates) in ${plan.slots.length} slots`,
  );

  await stack.start();
  await createAccounts(stack, plan);
  progress(
    `${plan.accounts.length} accounts created, ${plan.sales.filter((sale) => sale.snapshot).length} checkout snapshots stored`,
  );

  const sendMs = (plan.slots.length * 1000) / options.rate;
  const faults = planFaults(sendMs, options.seed);
  progress(
    `sending for about ${(sendMs / 1000).toFixed(0)} s at ${options.rate}/s, with ${faults.length} faults`,
  );
  const origin = Date.now();
  const stopped = () => stopping;
  const [send, faultRecords] = await Promise.all([
    sendPlan({
      plan,
      url: stack.webhookUrl,
      secret: stack.settings.webhookSecret,
      rate: options.rate,
      deadline: origin + sendMs + options.drainTimeoutMs,
      stopped,
      progress,
    }),
    runFaults({ faults, stack, origin, stopped, progress }),
  ]);
  const timeline = {
    lastAckMs: send.lastAckAt - origin,
    faultsOverMs: Math.max(0, ...faultRecords.map((fault) => fault.endedAt - origin)),
  };
  progress(
    `every delivery acknowledged ${((send.lastAckAt - origin) / 1000).toFixed(1)} s after the first, ` +
      `every fault over at ${(timeline.faultsOverMs / 1000).toFixed(1)} s; draining`,
  );

  const connection = await Connection.connect({ address: stack.temporal.address });
  try {
    // The apps run in development, on the published development key ring.
    const client = new Client({
      connection,
      namespace: 'default',
      dataConverter: temporalDataConverter({
        keyRing: PayloadKeyRing.from(DEVELOPMENT_PAYLOAD_KEYS),
        encrypt: true,
      }),
    });
    const drained = await drain({
      client,
      sql: stack.sql,
      expectedWorkflows: plan.events.length,
      timeoutMs: options.drainTimeoutMs,
      progress,
    });
    progress(drained.drained ? 'drained; checking' : 'not drained in time; checking what there is');
    const checks = await checkRun({
      plan,
      send,
      accepted: stack.sink.accepted,
      faults: faultRecords,
      unexpectedExits: stack.unexpectedExits,
      sql: stack.sql,
      client,
    });
    for (const fault of faultRecords.filter((record) => record.error !== null)) {
      checks.violations.push({
        check: `fault ${fault.kind} not carried out`,
        count: 1,
        examples: [fault.error ?? ''],
      });
    }
    if (!drained.drained)
      checks.violations.unshift({ check: 'not drained before the timeout', count: 1, examples: [] });
    const { perEvent: _perEvent, ...sendFigures } = send;
    return {
      passed: checks.violations.length === 0,
      options: {
        events: options.events,
        rate: options.rate,
        seed: options.seed,
        drainTimeoutMs: options.drainTimeoutMs,
      },
      plan: {
        events: plan.events.length,
        sessions: plan.sales.length,
        accounts: plan.accounts.length,
        sessionsWithSecondEvent: plan.sales.filter((sale) => sale.shape !== 'paid').length,
        deliveries,
        duplicateDeliveries: plan.duplicateDeliveries,
        duplicatedEvents: plan.duplicatedEvents,
        concurrentBursts: plan.concurrentBursts,
      },
      send: sendFigures,
      faults: faultRecords.map(({ startedAt, endedAt: _endedAt, ...fault }) => ({
        ...fault,
        atS: (startedAt - origin) / 1000,
      })),
      smtpRefusals: { ...stack.sink.refusals },
      unexpectedExits: stack.unexpectedExits,
      drain: drained,
      timeline,
      checks,
      wallMs: Date.now() - wallStart,
      machine: { cpus: os.cpus().length, node: process.version },
      workDir: null,
    };
  } finally {
    await connection.close();
  }
}

let stopping = false;

async function main(argv: string[]): Promise<number> {
  let options: ChaosOptions | null;
  try {
    options = parseChaosOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\nsee: npm run chaos -- --help\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }
  const out = options.json ? process.stderr : process.stdout;
  const began = Date.now();
  const progress = (line: string) =>
    out.write(`[chaos ${((Date.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);

  const workDir = mkdtempSync(path.join(os.tmpdir(), 'credits-chaos-'));
  const stack = new ChaosStack(workDir, progress);
  progress(`data and logs in ${workDir}`);

  // Ctrl-C: stop everything in order; a second one kills what is left.
  process.on('exit', () => stack.killNow());
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(name, () => {
      if (stopping) {
        stack.killNow();
        process.exit(130);
      }
      stopping = true;
      progress(`${name}: stopping everything (again to force)`);
      void stack.stop().finally(() => {
        if (!options.keep) rmSync(workDir, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }

  let report: ChaosReport | null = null;
  try {
    report = await run(options, stack, progress);
  } catch (error) {
    progress(
      `the run could not complete: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  } finally {
    if (!stopping) {
      stopping = true;
      progress('stopping everything');
      await stack.stop();
    }
  }
  const passed = report?.passed === true;
  // For a post-mortem: every figure, and every message the sink accepted (with when).
  if (report) writeFileSync(path.join(stack.logDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(
    path.join(stack.logDir, 'accepted-mail.json'),
    `${JSON.stringify(stack.sink?.accepted ?? [])}\n`,
  );
  if (options.keep) {
    progress(`kept ${workDir}`);
  } else if (passed) {
    rmSync(workDir, { recursive: true, force: true });
  } else {
    // The logs say what happened; the databases are large and of little use once stopped.
    rmSync(path.join(workDir, 'postgres'), { recursive: true, force: true });
    for (const file of ['temporal.db', 'temporal.db-wal', 'temporal.db-shm']) {
      rmSync(path.join(workDir, file), { force: true });
    }
  }
  if (!report) {
    process.stderr.write(`logs: ${stack.logDir}\n`);
    return 2;
  }
  if (!passed || options.keep) report.workDir = options.keep ? workDir : stack.logDir;
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return passed ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `chaos failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);
