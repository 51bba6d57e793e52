import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCreditsClient, type CreditsClient } from '../../client/index';
import { loadFeatureCatalog } from '../../db/catalog/features';
import { loadPackCatalog } from '../../db/catalog/packs';
import { saveCheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import { runPool } from '../bench-support';
import { checkRun } from './checks';
import { drain } from './drain';
import { planFaults, runFaults, type FaultKind, type PlannedFault } from './faults';
import { parseChaosOptions, UsageError, USAGE, type ChaosOptions } from './options';
import type { ChaosReport } from './report';
import { formatReport } from './report';
import { sendPlan } from './sender';
import { ChaosStack } from './stack';
import { sleep } from './processes';
import { Random } from './random';
import { UsageSender, type UsageSendResult } from './usage-sender';
import { buildUsagePlan, USAGE_GRANT_REASON, type UsagePlan } from './usage-workload';
import { buildPlan, type Plan } from './workload';
import { DEVELOPMENT_PAYLOAD_KEYS } from '../../config/env';
import { PayloadKeyRing, temporalDataConverter } from '../../config/payload-codec';

/**
 * `npm run chaos`: the whole service as separate processes, under load and under faults, then
 * checked. See options.ts for the command line and docs/chaos.md for what it does.
 *
 *   npm run chaos -- --events 1500 --seed 1
 */

async function createAccounts(
  stack: ChaosStack,
  api: CreditsClient,
  plan: Plan,
  usage: UsagePlan | null,
): Promise<void> {
  const accounts = [...plan.accounts, ...(usage?.accounts ?? [])];
  await runPool(accounts.length, 8, async (index) => {
    const account = accounts[index];
    if (!account) return;
    const { error, response } = await api.POST('/v1/accounts', { body: account });
    if (response.status !== 201) {
      throw new Error(`POST /v1/accounts answered ${response.status} ${JSON.stringify(error)}`);
    }
  });
  // The usage accounts' credits, before any usage is sent: afterwards they only go down.
  const grants = usage?.grants ?? [];
  await runPool(grants.length, 4, async (index) => {
    const grant = grants[index];
    if (!grant) return;
    const { error, response } = await api.POST('/v1/accounts/{id}/grants', {
      params: { path: { id: grant.accountId } },
      body: {
        amount: grant.amount,
        category: 'promotional',
        reason: USAGE_GRANT_REASON,
        idempotencyKey: grant.idempotencyKey,
      },
    });
    if (response.status !== 201) {
      throw new Error(`POST /v1/accounts/{id}/grants answered ${response.status} ${JSON.stringify(error)}`);
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

function usageFigures(plan: UsagePlan, send: UsageSendResult): NonNullable<ChaosReport['usage']> {
  const { perEvent: _perEvent, ...figures } = send;
  return {
    events: plan.events.length,
    accounts: new Set(plan.events.map((event) => event.accountId)).size,
    usageAccounts: plan.accounts.length,
    features: plan.features.map((feature) => feature.key),
    batches: plan.batches.length,
    deliveries: plan.events.length + plan.duplicateDeliveries,
    duplicateDeliveries: plan.duplicateDeliveries,
    resentEvents: plan.resentEvents,
    concurrentBatches: plan.concurrentBatches,
    send: figures,
  };
}

/** The faults that cut usage requests off mid-way, and how many batches go out just before them. */
const USAGE_CUT_OFF_BY: ReadonlySet<FaultKind> = new Set(['api_kill', 'postgres_restart']);
const USAGE_BATCHES_BEFORE_KILL = 4;

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
  const usage =
    options.usageEvents > 0
      ? buildUsagePlan({
          events: options.usageEvents,
          seed: options.seed,
          catalog: loadFeatureCatalog(),
          purchaseAccounts: plan.accounts,
        })
      : null;
  if (usage) {
    progress(
      `usage plan: ${usage.events.length} events of ${usage.features.length} features in ${usage.batches.length} batches, ` +
        `${usage.accounts.length} usage accounts (granted ${usage.grants.reduce((total, grant) => total + grant.amount, 0)} credits) ` +
        `and the purchase accounts; ${usage.duplicateDeliveries} duplicate deliveries`,
    );
  }

  await stack.start();
  const api = createCreditsClient({
    baseUrl: `http://127.0.0.1:${stack.settings.apiPort}`,
    apiKey: stack.settings.apiKey,
  });
  await createAccounts(stack, api, plan, usage);
  progress(
    `${plan.accounts.length + (usage?.accounts.length ?? 0)} accounts created, ` +
      `${plan.sales.filter((sale) => sale.snapshot).length} checkout snapshots stored` +
      (usage ? `, ${usage.grants.length} usage accounts granted their credits` : ''),
  );

  const sendMs = (plan.slots.length * 1000) / options.rate;
  const faults = planFaults(sendMs, options.seed);
  progress(
    `sending for about ${(sendMs / 1000).toFixed(0)} s at ${options.rate}/s, with ${faults.length} faults`,
  );
  const origin = Date.now();
  const stopped = () => stopping;
  const begun = new Set<PlannedFault>();
  let faultsOver = false;
  const usageSender = usage
    ? new UsageSender({
        plan: usage,
        api,
        seed: options.seed,
        // Over the same time as the purchase events, in step with the faults.
        spreadMs: sendMs,
        faultsCaughtUp: (atMs) =>
          faultsOver || faults.every((fault) => fault.atMs > atMs || begun.has(fault)),
        deadline: origin + sendMs + options.drainTimeoutMs,
        stopped,
        progress,
      })
    : null;
  // A few usage requests on their way when the API is killed or PostgreSQL stopped: a moment for
  // them to get inside the process or the transaction, then the fault.
  const cutOffDelay = new Random(options.seed, 'usage-cut-off');
  const beforeFault = async (fault: PlannedFault) => {
    begun.add(fault);
    if (!usageSender || !USAGE_CUT_OFF_BY.has(fault.kind)) return;
    const sent = usageSender.sendAhead(USAGE_BATCHES_BEFORE_KILL);
    if (sent > 0) {
      progress(`usage: ${sent} batches sent just before it`);
      await sleep(cutOffDelay.int(5, 40));
    }
  };
  const [send, usageSend, faultRecords] = await Promise.all([
    sendPlan({
      plan,
      url: stack.webhookUrl,
      secret: stack.settings.webhookSecret,
      rate: options.rate,
      deadline: origin + sendMs + options.drainTimeoutMs,
      stopped,
      progress,
    }),
    usageSender ? usageSender.run() : null,
    runFaults({ faults, stack, origin, stopped, progress, beforeFault }).finally(() => {
      faultsOver = true;
    }),
  ]);
  const lastAckAt = Math.max(send.lastAckAt, usageSend?.lastAckAt ?? 0);
  const timeline = {
    lastAckMs: lastAckAt - origin,
    faultsOverMs: Math.max(0, ...faultRecords.map((fault) => fault.endedAt - origin)),
  };
  progress(
    `every delivery acknowledged ${((lastAckAt - origin) / 1000).toFixed(1)} s after the first, ` +
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
      usage: usage && usageSend ? { plan: usage, send: usageSend } : null,
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
        usageEvents: options.usageEvents,
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
      usage: usage && usageSend ? usageFigures(usage, usageSend) : null,
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
