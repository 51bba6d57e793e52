import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities/index';
import { createMailer } from '../../email/mailer';
import { loadWorkerConfig } from '../../config/env';
import { temporalDataConverter } from '../../config/payload-codec';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { temporalWorkflowDirectory } from '../../worker/maintenance-schedule';
import { createWorkerMetrics, type WorkerMetrics } from '../../worker/metrics';
import { deliverAndSettle, grantedPurchase, PACKS } from '../support/billing';
import { ledgerRowsFor } from '../support/db';
import { startHarness, TEST_OUTBOX_AGES, type Harness } from '../support/harness';
import { TEST_PAYLOAD_KEYS } from '../support/payload-keys';
import { ServiceProcess } from '../support/service-process';
import { waitUntil } from '../support/wait';

/** The value of one series in Prometheus's text format (0 when it is not there). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.startsWith(`${name}{`) ? line.slice(name.length + 1, line.indexOf('}')) : '';
    if (wanted.every((pair) => labelText.split(',').includes(pair))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return 0;
}

async function valueOf(metrics: WorkerMetrics, name: string, labels: Record<string, string>) {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find((value) =>
    Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted),
  );
  return found?.value ?? 0;
}

describe('WORKER_METRICS_PORT', () => {
  const base = {
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/credits',
    TEMPORAL_ADDRESS: '127.0.0.1:7233',
    SMTP_URL: 'smtp://127.0.0.1:1025',
  };
  it('when it is unset, off, 0 or a port, then the worker serves on 9464 (0 in tests), nothing, a free port or that port', () => {
    expect(loadWorkerConfig(base).metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadWorkerConfig({ ...base, NODE_ENV: 'test' }).metrics).toEqual({ host: '127.0.0.1', port: 0 });
    expect(loadWorkerConfig({ ...base, WORKER_METRICS_PORT: 'off' }).metrics).toBeNull();
    expect(
      loadWorkerConfig({ ...base, WORKER_METRICS_PORT: '9100', WORKER_METRICS_HOST: '0.0.0.0' }).metrics,
    ).toEqual({ host: '0.0.0.0', port: 9100 });
  });

  it('when it is not a port, then the worker refuses to start and names it', () => {
    for (const bad of ['nine', '70000', '-1']) {
      expect(() => loadWorkerConfig({ ...base, WORKER_METRICS_PORT: bad })).toThrow(/WORKER_METRICS_PORT/);
    }
  });
});

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  await h?.close();
});

describe('the worker process', () => {
  let worker: ServiceProcess;
  let metricsUrl: string;
  const scrape = async () => {
    const response = await fetch(metricsUrl);
    expect(response.status).toBe(200);
    return response.text();
  };

  beforeAll(async () => {
    worker = new ServiceProcess('worker', 'worker/main.ts', {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      DATABASE_URL: h.config.databaseUrl,
      TEMPORAL_ADDRESS: h.config.temporal.address,
      TEMPORAL_NAMESPACE: h.config.temporal.namespace,
      TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue,
      TEMPORAL_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
      SMTP_URL: h.smtp.url,
      MAINTENANCE_INTERVAL: '1 hour',
      WORKER_METRICS_PORT: '0',
    });
    // It bundles the workflow code first, as production does: slow on a busy machine.
    await worker.waitForOutput(/"msg":"worker started"/, 200_000);
    const started = worker.log.split('\n').find((line) => line.includes('"msg":"worker started"'));
    metricsUrl = (JSON.parse(started as string) as { metricsUrl: string }).metricsUrl;
  }, 240_000);
  afterAll(async () => {
    await worker?.stop();
  });

  it("when scraped, then one URL serves the Temporal SDK's runtime metrics and the business metrics", async () => {
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    // A quiet start: the workflow bundler's statistics are debug lines, below LOG_LEVEL=info.
    expect(worker.log).not.toMatch(/webpack|Workflow bundle created/);
    // The SDK's core reports once its pollers have run.
    const text = await waitUntil(async () => {
      const body = await scrape();
      return /^temporal_\w+/m.test(body) ? body : null;
    });
    expect(sample(text, 'billing_worker_runtime_metrics_up')).toBe(1);
    expect(text).toMatch(/^# TYPE billing_credits_granted_total counter$/m);
    expect(text).toMatch(/^billing_purchases_held_for_review\{kind="purchase"\} \d+$/m);
    expect(text).toMatch(/^billing_reconcile_missed_events_total 0$/m);
    expect(sample(text, 'billing_metrics_database_up')).toBe(1);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('when a purchase is granted, then credits granted by source move by exactly its credits and its receipt is counted', async () => {
    const before = await scrape();
    const account = await h.newAccount();
    const session = checkoutSession({
      accountId: account.id,
      packId: 'growth',
      amountTotal: PACKS.growth.amount,
    });
    const completed = stripeEvent('checkout.session.completed', session);
    const [result] = await deliverAndSettle(h, [completed]);
    expect(result).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 550 });
    // Its activities log JSON lines that name the event, the workflow and the account.
    const granted = await waitUntil(() =>
      worker.log
        .split('\n')
        .find((line) => line.includes('"msg":"credits granted"') && line.includes(account.id)),
    );
    expect(JSON.parse(granted)).toMatchObject({
      eventId: completed.id,
      workflowId: completed.id,
      accountId: account.id,
      level: 30,
    });
    // A redelivery under another event ID grants nothing, so counts nothing.
    const [again] = await deliverAndSettle(h, [
      stripeEvent('checkout.session.async_payment_succeeded', session),
    ]);
    expect(again).toMatchObject({ stage: 'already_granted' });

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) =>
      sample(after, name, labels) - sample(before, name, labels);
    expect(moved('billing_credits_granted_total', { source: 'purchase' })).toBe(550);
    expect(moved('billing_credits_granted_total', { source: 'subscription' })).toBe(0);
    expect(moved('billing_emails_sent_total', { kind: 'receipt' })).toBe(1);
    expect(moved('billing_emails_failed_total', { kind: 'receipt' })).toBe(0);
    // The SDK's own view of the same work (the names the dashboard uses).
    expect(
      sample(after, 'temporal_workflow_completed_total', { workflow_type: 'purchaseWorkflow' }),
    ).toBeGreaterThan(0);
    expect(after).toMatch(
      /^temporal_(local_)?activity_execution_latency_bucket\{.*activity_type="validateAndGrantPurchase"/m,
    );
  });

  it('when a purchase waits for review, then the held gauges show it and its age', async () => {
    const account = await h.newAccount();
    // Paid 850 for a pack priced 900: held for review.
    const session = checkoutSession({ accountId: account.id, packId: 'starter', amountTotal: 850 });
    const answer = await h.deliver(stripeEvent('checkout.session.completed', session));
    expect(answer.status).toBe(200);
    const workflowId = answer.body.workflowId as string;
    await waitUntil(async () => {
      const [row] = await h.sql<
        { status: string }[]
      >`SELECT status FROM purchases WHERE id = ${session.id as string}`;
      return row?.status === 'held_for_review';
    });
    // As if it had waited two hours (the gauge is read from the database, whoever else waits).
    await h.sql`UPDATE purchases SET updated_at = now() - interval '2 hours' WHERE id = ${session.id as string}`;
    const text = await waitUntil(
      async () => {
        const body = await scrape();
        return sample(body, 'billing_purchases_held_oldest_age_seconds', { kind: 'purchase' }) >= 7200
          ? body
          : null;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'the held gauge to show the held purchase' },
    );
    expect(sample(text, 'billing_purchases_held_for_review', { kind: 'purchase' })).toBeGreaterThanOrEqual(1);

    await h.temporal.workflow
      .getHandle(workflowId)
      .signal('review', { decision: 'reject', reviewer: 'ops@example.com', note: 'test' });
    await h.temporal.workflow.getHandle(workflowId).result();
  });
});

describe('activities counting with a registry of their own', () => {
  let worker: { instance: Worker; running: Promise<void>; connection: NativeConnection } | null = null;
  let metrics: WorkerMetrics;
  /** Activities whose next call commits, then fails as if its completion had been lost. */
  const losing = new Set<keyof Activities>();

  beforeAll(async () => {
    metrics = createWorkerMetrics({ sql: h.sql, processMetrics: false, databaseRefreshMs: 0 });
    const connection = await NativeConnection.connect({ address: h.config.temporal.address });
    const mailer = createMailer({ smtpUrl: h.smtp.url, from: 'Credits <billing@credits.test>' });
    const real = createActivities({
      sql: h.sql,
      mailer,
      invoicePayments: null,
      workflows: temporalWorkflowDirectory(h.temporal),
      metrics: metrics.business,
      config: { stripe: h.config.stripe, emailDomain: 'credits.test', outbox: TEST_OUTBOX_AGES },
    });
    const activities = Object.fromEntries(
      Object.entries(real).map(([name, run]) => [
        name,
        async (...args: unknown[]) => {
          const answer = await (run as (...a: unknown[]) => Promise<unknown>)(...args);
          if (losing.delete(name as keyof Activities))
            throw new Error(`${name} committed, but its completion was lost`);
          return answer;
        },
      ]),
    );
    const instance = await Worker.create({
      connection,
      namespace: h.config.temporal.namespace,
      taskQueue: h.config.temporal.taskQueue,
      workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string },
      dataConverter: temporalDataConverter(h.config.temporalPayloads),
      activities,
      interceptors: { activity: activityInterceptors },
    });
    worker = { instance, running: instance.run(), connection };
  });
  afterAll(async () => {
    if (worker) {
      worker.instance.shutdown();
      await worker.running;
      await worker.connection.close();
    }
    h.smtp.refuseRecipients(null);
  });

  it('when a grant commits and its completion is lost, then the retry does not count its credits again', async () => {
    const before = await valueOf(metrics, 'billing_credits_granted_total', { source: 'purchase' });
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    losing.add('validateAndGrantPurchase');
    const [result] = await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
    expect(result).toMatchObject({ stage: 'completed', receipt: 'sent', credits: 100 });
    expect(losing.has('validateAndGrantPurchase')).toBe(false);
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect((await valueOf(metrics, 'billing_credits_granted_total', { source: 'purchase' })) - before).toBe(
      100,
    );
  });

  it('when a refund commits and its completion is lost, then its credits are counted revoked once', async () => {
    const purchase = await grantedPurchase(h, 'growth');
    const before = await valueOf(metrics, 'billing_credits_revoked_total', {
      source: 'purchase',
      reason: 'refund',
    });
    losing.add('applyRefund');
    const [result] = await deliverAndSettle(h, [purchase.refunded(purchase.terms.amount)]);
    expect(result).toMatchObject({ stage: 'applied', revokedCredits: 550 });
    const after = await valueOf(metrics, 'billing_credits_revoked_total', {
      source: 'purchase',
      reason: 'refund',
    });
    expect(after - before).toBe(550);
  });

  it("when a top-up's grant is owed after its money was taken, then the owed gauges count it and its age until it is granted", async () => {
    const account = await h.newAccount();
    const MONTH = 30 * 24 * 60 * 60;
    // Owed for a month: older than anything another test leaves owed meanwhile.
    const [topup] = await h.sql<{ id: string }[]>`
      INSERT INTO topups (account_id, credits, amount_cents, currency, month, status, failure_code, updated_at)
      VALUES (${account.id}, 100, 900, 'usd', date_trunc('month', now())::date, 'failed', 'grant_failed',
              now() - interval '30 days')
      RETURNING id`;
    expect(await valueOf(metrics, 'billing_topup_grants_owed', {})).toBeGreaterThanOrEqual(1);
    expect(await valueOf(metrics, 'billing_topup_grants_owed_oldest_age_seconds', {})).toBeGreaterThanOrEqual(
      MONTH,
    );

    await h.sql`UPDATE topups SET status = 'succeeded', failure_code = NULL WHERE id = ${topup?.id ?? ''}`;
    expect(await valueOf(metrics, 'billing_topup_grants_owed_oldest_age_seconds', {})).toBeLessThan(MONTH);
  });

  it('when the SMTP server refuses a receipt for good, then one failure is counted and nothing sent', async () => {
    const sent = await valueOf(metrics, 'billing_emails_sent_total', { kind: 'receipt' });
    const failed = await valueOf(metrics, 'billing_emails_failed_total', { kind: 'receipt' });
    h.smtp.refuseRecipients(550);
    try {
      const account = await h.newAccount();
      const session = checkoutSession({ accountId: account.id, packId: 'starter' });
      const [result] = await deliverAndSettle(h, [stripeEvent('checkout.session.completed', session)]);
      expect(result).toMatchObject({ stage: 'completed_receipt_failed' });
    } finally {
      h.smtp.refuseRecipients(null);
    }
    expect((await valueOf(metrics, 'billing_emails_failed_total', { kind: 'receipt' })) - failed).toBe(1);
    expect((await valueOf(metrics, 'billing_emails_sent_total', { kind: 'receipt' })) - sent).toBe(0);
  });
});
