import { ScheduleOverlapPolicy } from '@temporalio/client';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { stripeEventLister } from '../../activities/reconciliation/reconcile';
import { loadWorkerConfig } from '../../config/env';
import { createStripeClient } from '../../stripe/client';
import { readWatermarkSeconds } from '../../db/reconciliation/reconcile';
import { ensureReconcileSchedule } from '../../worker/maintenance-schedule';
import { ROUTED_STRIPE_EVENT_TYPES } from '../../stripe/event-routes';
import { parseBackfillArguments, planBackfill, UsageError } from '../../cli/reconcile';
import { topupLatePaymentWorkflowId, topupWorkflowId } from '../../workflows/topups/contract';
import { workflowLookup, type WorkflowStanding } from '../../stripe/event-intake';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { balanceOf, ledgerRowsFor, outboxRowsFor } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { startReconcileWorker, type ReconcileWorker } from '../support/reconcile';
import { StripeStandIn } from '../support/stripe-stand-in';
import { waitUntil } from '../support/wait';

const nowSeconds = () => Math.floor(Date.now() / 1000);
const DAY = 24 * 60 * 60;

describe('reconciliation with Stripe events', () => {
  let h: Harness;
  let stripe: StripeStandIn;
  let reconcile: ReconcileWorker;

  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness();
    reconcile = await startReconcileWorker(h, stripe);
  });
  afterAll(async () => {
    await reconcile?.stop();
    await h?.close();
    await stripe?.stop();
  });
  beforeEach(async () => {
    stripe.clearEvents();
    stripe.restoreEventLists();
    await h.sql`DELETE FROM reconcile_watermarks WHERE name = ${reconcile.watermark}`;
  });

  /**
   * A paid purchase of the starter pack (100 credits) that Stripe lists; no webhook sent. Made a
   * few seconds ago by default: a run reads up to the second it starts, excluded.
   */
  async function missedPurchase(options: { created?: number } = {}) {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter' });
    const event = stripeEvent('checkout.session.completed', session, {
      created: options.created ?? nowSeconds() - 5,
    });
    stripe.publishEvent(event);
    return { account, sessionId: session.id as string, event };
  }

  /** Every purchase granted once, to its account, with one receipt sent. */
  async function expectGrantedOnce(purchases: { account: { id: string }; sessionId: string }[]) {
    for (const { account, sessionId } of purchases) {
      await waitUntil(async () => (await outboxRowsFor(h.sql, account.id))[0]?.status === 'sent', {
        what: `the receipt of ${sessionId}`,
        timeoutMs: 60_000,
      });
      expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
      expect(await balanceOf(h.sql, account.id)).toBe(100);
      expect(await outboxRowsFor(h.sql, account.id)).toEqual([
        expect.objectContaining({ status: 'sent', attempts: 1 }),
      ]);
    }
  }

  /** Runs then read from there on only (one slice), as a schedule that has been running does. */
  async function setWatermark(seconds: number) {
    await h.sql`
      INSERT INTO reconcile_watermarks (name, watermark) VALUES (${reconcile.watermark}, to_timestamp(${seconds}))
      ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark`;
  }

  async function startedEventsOf(runId: number): Promise<string[]> {
    const rows = await h.sql<{ id: string }[]>`
      SELECT e->>'id' AS id FROM reconcile_pages, jsonb_array_elements(started_events) e WHERE run_id = ${runId}`;
    return rows.map((row) => row.id).sort();
  }

  it('when webhooks never arrived, then reconcile starts each event once: credits granted once, one receipt each', async () => {
    const purchases = [await missedPurchase(), await missedPurchase(), await missedPurchase()];

    const first = await (await reconcile.run()).result;
    // 30 slices of a day: 29 empty pages, then 2 pages of 2 and 1 events.
    expect(first).toMatchObject({ pages: 31, events: 3, started: 3, duplicates: 0, ignored: 0, rejected: 0 });
    await expectGrantedOnce(purchases);
    expect(await startedEventsOf(first.runId)).toEqual(purchases.map((p) => p.event.id).sort());
    // The first run reads 30 days back; the watermark is where it stopped reading.
    expect(first.untilSeconds - first.fromSeconds).toBe(30 * DAY);
    expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBe(first.untilSeconds);

    // Stripe was asked for the routed event types only, in the window, with its list parameters.
    const request = stripe.eventListRequests().at(-1);
    const types = [...(request?.entries() ?? [])].filter(([name]) => name.startsWith('types['));
    expect(types.map(([, value]) => value)).toEqual([...ROUTED_STRIPE_EVENT_TYPES]);
    expect(request?.get('limit')).toBe('2');
    expect(request?.get('created[lt]')).toBe(String(first.untilSeconds));

    // The next run starts from the watermark minus the overlap: everything is a duplicate now.
    const second = await (await reconcile.run()).result;
    expect(second.fromSeconds).toBe(first.untilSeconds - 60);
    expect(second).toMatchObject({ events: 3, started: 0, duplicates: 3 });
    await expectGrantedOnce(purchases);
    for (const { account } of purchases) expect(h.smtp.to(account.email)).toHaveLength(1);
  });

  it('when the events were delivered by their webhooks, then reconcile finds them duplicates and doubles nothing', async () => {
    await setWatermark(nowSeconds() - 3600);
    const delivered = [await missedPurchase(), await missedPurchase()];
    for (const { event } of delivered) expect((await h.deliver(event)).body.status).toBe('started');
    await expectGrantedOnce(delivered);
    const missed = await missedPurchase();

    const result = await (await reconcile.run()).result;
    expect(result).toMatchObject({ events: 3, started: 1, duplicates: 2 });
    expect(await startedEventsOf(result.runId)).toEqual([missed.event.id]);
    await expectGrantedOnce([...delivered, missed]);
  });

  it('when reconcile races the live webhooks of the same events, then each is granted once', async () => {
    await setWatermark(nowSeconds() - 3600);
    const purchases = [
      await missedPurchase(),
      await missedPurchase(),
      await missedPurchase(),
      await missedPurchase(),
    ];
    const [run, ...answers] = await Promise.all([
      reconcile.run().then(({ result }) => result),
      ...purchases.map(({ event }) => h.deliver(event)),
    ]);
    const webhookStarted = purchases
      .filter((_, i) => answers[i]?.body.status === 'started')
      .map((p) => p.event.id);
    const reconcileStarted = await startedEventsOf(run?.runId ?? -1);
    // Each event was started by exactly one of them; the other found it a duplicate.
    expect([...webhookStarted, ...reconcileStarted].sort()).toEqual(purchases.map((p) => p.event.id).sort());
    expect(run).toMatchObject({
      events: 4,
      started: reconcileStarted.length,
      duplicates: webhookStarted.length,
    });
    await expectGrantedOnce(purchases);
  });

  it('when a listed event is malformed, then it is recorded as rejected as the webhook does, once, and the run goes on', async () => {
    await setWatermark(nowSeconds() - 3600);
    const account = await h.newAccount();
    const broken = stripeEvent(
      'checkout.session.completed',
      {
        ...checkoutSession({ accountId: account.id, packId: 'starter' }),
        amount_total: 'a lot',
      },
      { created: nowSeconds() - 5 },
    );
    stripe.publishEvent(broken);
    const fine = await missedPurchase();

    const first = await (await reconcile.run()).result;
    expect(first).toMatchObject({ events: 2, started: 1, rejected: 1 });
    await expectGrantedOnce([fine]);
    const rejected = await h.api('GET', '/v1/rejected-events?limit=50');
    expect(rejected.body.events).toContainEqual(
      expect.objectContaining({ eventId: broken.id, reasonCode: 'invalid_object', deliveries: 1 }),
    );
    // Read again by the next run: still one rejected event, not a second delivery.
    expect(await (await reconcile.run()).result).toMatchObject({ rejected: 1, duplicates: 1 });
    const again = await h.api('GET', '/v1/rejected-events?limit=50');
    expect(again.body.events).toContainEqual(expect.objectContaining({ eventId: broken.id, deliveries: 1 }));
    expect(await balanceOf(h.sql, account.id)).toBe(0);
  });

  it('when Stripe cannot be reached, then the run retries, the watermark stays, and the run completes once it is back', async () => {
    const mark = nowSeconds() - 3600;
    await setWatermark(mark);
    const purchase = await missedPurchase();
    stripe.failEventListsAfter(0, 0, { type: 'api_connection_error', message: 'unreachable' }, 10_000);
    const before = stripe.eventListRequests().length;

    const { workflowId, result } = await reconcile.run();
    // One attempt of the activity is three requests (the SDK retries twice); wait for two attempts.
    await waitUntil(() => stripe.eventListRequests().length - before >= 6, {
      what: 'two failed attempts',
      timeoutMs: 60_000,
    });
    expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBe(mark);
    const described = await h.temporal.workflow.getHandle(workflowId).describe();
    expect(described.status.name).toBe('RUNNING');
    expect(await balanceOf(h.sql, purchase.account.id)).toBe(0);

    stripe.restoreEventLists();
    expect(await result).toMatchObject({ started: 1 });
    await expectGrantedOnce([purchase]);
    expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBeGreaterThan(mark);
  });

  it('when a run fails after some pages and its worker stops, then it resumes where it was, and the watermark never passes what is unfinished', async () => {
    // Slices of a day, oldest first: 27 empty ones, then 3 events (2 pages), 1 event, 1 event.
    const older = await Promise.all(
      [1, 2, 3].map(() => missedPurchase({ created: nowSeconds() - 2 * DAY - 3600 })),
    );
    const yesterday = await missedPurchase({ created: nowSeconds() - DAY - 3600 });
    const today = await missedPurchase();
    // Fail from the second page of the older events' slice on.
    stripe.failEventListsAfter(28, 500, { type: 'api_error', message: 'internal error' }, 10_000);
    const before = stripe.eventListRequests().length;

    const { workflowId, result } = await reconcile.run();
    await waitUntil(() => stripe.eventListRequests().length - before >= 28 + 3, {
      what: 'a failed attempt after some pages',
      timeoutMs: 90_000,
    });
    const [run] = await h.sql<{ id: string; pages: number; started: number; window_from: Date }[]>`
      SELECT id, pages, started, window_from FROM reconcile_runs WHERE run_key LIKE ${`${workflowId}/%`}`;
    expect(run).toMatchObject({ pages: 28, started: 2 });
    // Done: the empty slices. Not done: the slice of the page that fails, and every later one.
    const mark = await readWatermarkSeconds(h.sql, reconcile.watermark);
    const from = run!.window_from.getTime() / 1000;
    const failingSlice = Math.floor((older[0]!.event.created - from) / DAY);
    expect(failingSlice).toBe(27);
    expect(mark).toBe(from + failingSlice * DAY);
    expect(mark).toBeLessThanOrEqual(older[0]!.event.created);

    // The worker stops while the page is retried, Stripe comes back, another worker takes over.
    await reconcile.stop();
    stripe.restoreEventLists();
    reconcile = await startReconcileWorker(h, stripe);
    expect(await result).toMatchObject({ events: 5, started: 5, duplicates: 0 });
    await expectGrantedOnce([...older, yesterday, today]);
    expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBe((await result).untilSeconds);
  });

  it('when a run is lost mid-way, then the next run reads again from the watermark and starts only what is missing', async () => {
    const mark = nowSeconds() - 3600;
    await setWatermark(mark);
    const purchases = [await missedPurchase(), await missedPurchase(), await missedPurchase()];
    stripe.failEventListsAfter(1, 500, { type: 'api_error', message: 'internal error' }, 10_000);
    const before = stripe.eventListRequests().length;
    const lost = await reconcile.run();
    await waitUntil(() => stripe.eventListRequests().length - before >= 4, { what: 'a failed page' });
    await h.temporal.workflow.getHandle(lost.workflowId).terminate('lost');
    await expect(lost.result).rejects.toThrow('lost');
    expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBe(mark);
    stripe.restoreEventLists();

    const next = await (await reconcile.run()).result;
    // The lost run's first page started two events: they are duplicates now.
    expect(next).toMatchObject({ events: 3, started: 1, duplicates: 2 });
    await expectGrantedOnce(purchases);
  });

  it('when Stripe refuses the request itself (a bad key), then the run fails at once, recorded, and the watermark stays', async () => {
    const mark = nowSeconds() - 3600;
    await setWatermark(mark);
    await missedPurchase();
    stripe.failEventListsAfter(0, 401, {
      type: 'invalid_request_error',
      message: 'Invalid API Key provided',
    });

    const { workflowId, result } = await reconcile.run();
    await expect(result).rejects.toThrow();
    const [run] = await h.sql<{ status: string; error: string; pages: number }[]>`
      SELECT status, error, pages FROM reconcile_runs WHERE run_key LIKE ${`${workflowId}/%`}`;
    expect(run).toMatchObject({ status: 'failed', pages: 0 });
    expect(run?.error).toMatch(/^StripeRefused: Stripe refused to list events \(401\)/);
    expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBe(mark);
  });

  it('when a run reads many pages, then it continues as new with its place and counts, and finishes as one run', async () => {
    // 205 slices of a day, one page each (the last holds the event): past 200 pages per history.
    const purchase = await missedPurchase();
    const { workflowId, firstRunId, result } = await reconcile.run({
      window: { fromSeconds: nowSeconds() - 205 * DAY, untilSeconds: nowSeconds() },
    });
    expect(await result).toMatchObject({ pages: 205, events: 1, started: 1 });
    const latest = await h.temporal.workflow.getHandle(workflowId).describe();
    expect(latest.runId).not.toBe(firstRunId);
    expect(await h.sql`SELECT 1 FROM reconcile_runs WHERE run_key LIKE ${`${workflowId}/%`}`).toHaveLength(1);
    await expectGrantedOnce([purchase]);
  }, 240_000);

  it('when workers start, then the schedule is created once and kept up to date, and its runs reconcile from the watermark', async () => {
    await setWatermark(nowSeconds() - 3600);
    const purchase = await missedPurchase();
    const options = { taskQueue: reconcile.taskQueue, interval: '1 hour' as const };
    const scheduleId = await ensureReconcileSchedule(h.temporal, options);
    expect(await ensureReconcileSchedule(h.temporal, { ...options, interval: '2 hours' })).toBe(scheduleId);
    const schedule = h.temporal.schedule.getHandle(scheduleId);
    try {
      const described = await schedule.describe();
      expect(described.spec.intervals).toEqual([expect.objectContaining({ every: 2 * 3600_000 })]);
      expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcileWorkflow' });
      expect(described.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);

      await schedule.trigger();
      const run = await waitUntil(
        async () => {
          const [row] = await h.sql<{ status: string; started: number }[]>`
            SELECT status, started FROM reconcile_runs WHERE run_key LIKE ${`${scheduleId}-%`}`;
          return row?.status === 'completed' ? row : null;
        },
        { what: 'the scheduled run', timeoutMs: 60_000 },
      );
      expect(run.started).toBe(1);
      await expectGrantedOnce([purchase]);
    } finally {
      await schedule.delete();
    }
  });

  it('when the reconcile settings are read, then they have their defaults, and a lookback past what Stripe keeps is refused by name', () => {
    const env = {
      NODE_ENV: 'test',
      DATABASE_URL: 'postgres://localhost/credits',
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      SMTP_URL: 'smtp://127.0.0.1:1025',
    };
    expect(loadWorkerConfig(env).reconcile).toEqual({
      interval: '15 minutes',
      overlapSeconds: 15 * 60,
      lookbackSeconds: 30 * DAY,
      delaySeconds: 5 * 60,
    });
    expect(() => loadWorkerConfig({ ...env, RECONCILE_LOOKBACK: '31 days' })).toThrow(
      /RECONCILE_LOOKBACK: at most 30 days/,
    );
    expect(() => loadWorkerConfig({ ...env, RECONCILE_INTERVAL: 'often' })).toThrow(/RECONCILE_INTERVAL/);
  });

  describe('npm run reconcile', () => {
    it('when the arguments are bad, then it exits 2 with a message', () => {
      const now = nowSeconds();
      expect(() => parseBackfillArguments([], now)).toThrow(new UsageError('--since is required'));
      expect(() => parseBackfillArguments(['--since', 'yesterday'], now)).toThrow(/not an ISO 8601 date/);
      expect(() => parseBackfillArguments(['--since', '2026-01-01', '--until', '2025-12-01'], now)).toThrow(
        /must be after --since/,
      );
      expect(() =>
        parseBackfillArguments(['--since', new Date((now - 40 * DAY) * 1000).toISOString()], now),
      ).toThrow(/more than 30 days ago/);
      expect(() => parseBackfillArguments(['--since', '2026-01-01', '--frobnicate'], now)).toThrow(
        UsageError,
      );
      const since = new Date((now - DAY) * 1000).toISOString();
      expect(parseBackfillArguments(['--since', since, '--dry-run'], now)).toMatchObject({
        fromSeconds: now - DAY,
        untilSeconds: now,
        dryRun: true,
      });

      const cli = spawnSync(
        path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'),
        [path.join(__dirname, '..', '..', 'cli', 'reconcile.ts'), '--since', 'soon'],
        { encoding: 'utf8', env: { ...process.env, NODE_ENV: 'test' } },
      );
      expect(cli.status).toBe(2);
      expect(cli.stderr).toContain('--since: soon is not an ISO 8601 date');
    });

    it('when it is a dry run, then it lists what would start and what is started already, and changes nothing', async () => {
      const delivered = await missedPurchase();
      expect((await h.deliver(delivered.event)).body.status).toBe('started');
      await expectGrantedOnce([delivered]);
      const missed = await missedPurchase();
      const client = createStripeClient({ secretKey: 'sk_test_standin0123456789', apiBaseUrl: stripe.url });
      const exists = async (workflowId: string) =>
        h.temporal.workflow
          .getHandle(workflowId)
          .describe()
          .then(
            () => true,
            () => false,
          );

      const planned = await planBackfill({
        listEvents: stripeEventLister(client!),
        describeWorkflow: workflowLookup(h.temporal.workflow),
        routes: {
          purchaseReviewTimeout: h.config.purchaseReviewTimeout,
          receiptDeadline: h.config.receiptDeadline,
        },
        window: { fromSeconds: nowSeconds() - DAY, untilSeconds: nowSeconds() + 1 },
        pageSize: 1,
      });
      expect(planned).toEqual([
        expect.objectContaining({
          eventId: missed.event.id,
          outcome: 'start',
          workflowType: 'purchaseWorkflow',
        }),
        expect.objectContaining({ eventId: delivered.event.id, outcome: 'duplicate' }),
      ]);
      expect(await exists(missed.event.id)).toBe(false);
      expect(await balanceOf(h.sql, missed.account.id)).toBe(0);
      expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBeNull();
    });

    it('when it backfills a window, then it starts what is missing and leaves the watermark alone', async () => {
      const missed = await missedPurchase({ created: nowSeconds() - 3 * DAY });
      const result = await (
        await reconcile.run({
          window: { fromSeconds: nowSeconds() - 4 * DAY, untilSeconds: nowSeconds() - 2 * DAY },
        })
      ).result;
      expect(result).toMatchObject({ events: 1, started: 1, watermarkSeconds: null });
      await expectGrantedOnce([missed]);
      expect(await readWatermarkSeconds(h.sql, reconcile.watermark)).toBeNull();
    });
  });

  describe('a backfill planned over top-up payments', () => {
    it('when a backfill is planned, then a top-up payment event whose top-up workflow ran is a duplicate, as the backfill would find it', async () => {
      const intent = {
        id: 'pi_plannedtopup1',
        object: 'payment_intent',
        status: 'succeeded',
        amount: 900,
        amount_received: 900,
        currency: 'usd',
        livemode: false,
        customer: 'cus_planned1',
        metadata: { purpose: 'topup', topupId: 'topup_424242', accountId: 'acct_planned' },
        last_payment_error: null,
      };
      const event = stripeEvent('payment_intent.succeeded', intent);
      const asked: string[] = [];
      const planned = await planBackfill({
        listEvents: ({ types }) =>
          Promise.resolve({ events: types.includes(event.type) ? [event] : [], hasMore: false }),
        describeWorkflow: (workflowId) => {
          asked.push(workflowId);
          return Promise.resolve(
            workflowId === topupWorkflowId('topup_424242')
              ? { running: false, stage: 'succeeded', restartable: false }
              : null,
          );
        },
        routes: {
          purchaseReviewTimeout: h.config.purchaseReviewTimeout,
          receiptDeadline: h.config.receiptDeadline,
        },
        window: { fromSeconds: nowSeconds() - 3600, untilSeconds: nowSeconds() },
      });
      expect(planned).toEqual([expect.objectContaining({ eventId: event.id, outcome: 'duplicate' })]);
      expect(asked).toEqual([topupWorkflowId('topup_424242')]);
    });

    it("when a top-up's run ended without its credits, then its late success is planned as a start of the run of its own the backfill would start, and a duplicate once that run has granted", async () => {
      const intent = {
        id: 'pi_plannedlate1',
        object: 'payment_intent',
        status: 'succeeded',
        amount: 900,
        amount_received: 900,
        currency: 'usd',
        livemode: false,
        customer: 'cus_planned2',
        metadata: { purpose: 'topup', topupId: 'topup_434343', accountId: 'acct_planned' },
        last_payment_error: null,
      };
      const event = stripeEvent('payment_intent.succeeded', intent);
      const late = topupLatePaymentWorkflowId(intent.id);
      const plan = (runs: Record<string, WorkflowStanding>) =>
        planBackfill({
          listEvents: ({ types }) =>
            Promise.resolve({ events: types.includes(event.type) ? [event] : [], hasMore: false }),
          describeWorkflow: (workflowId) => Promise.resolve(runs[workflowId] ?? null),
          routes: {
            purchaseReviewTimeout: h.config.purchaseReviewTimeout,
            receiptDeadline: h.config.receiptDeadline,
          },
          window: { fromSeconds: nowSeconds() - 3600, untilSeconds: nowSeconds() },
        });
      const ended = (stage: string, restartable = false): WorkflowStanding => ({
        running: false,
        stage,
        restartable,
      });

      // The top-up's run recorded it failed (Stripe could not be asked): the success is news.
      const topupRun = { [topupWorkflowId('topup_434343')]: ended('failed') };
      expect(await plan(topupRun)).toEqual([
        expect.objectContaining({ eventId: event.id, outcome: 'start', workflowId: late }),
      ]);
      // A late run that failed may be started again; one that ended otherwise has it.
      expect(await plan({ ...topupRun, [late]: ended('granting', true) })).toEqual([
        expect.objectContaining({ outcome: 'start', workflowId: late }),
      ]);
      expect(await plan({ ...topupRun, [late]: ended('succeeded') })).toEqual([
        expect.objectContaining({ outcome: 'duplicate', workflowId: late }),
      ]);
      // Still waiting for it: the event goes to the top-up's own run.
      expect(
        await plan({
          [topupWorkflowId('topup_434343')]: {
            running: true,
            stage: 'awaiting_payment_event',
            restartable: false,
          },
        }),
      ).toEqual([expect.objectContaining({ outcome: 'start', workflowId: topupWorkflowId('topup_434343') })]);
    });
  });

  // Each test makes its own events; this keeps a stray one from another test out of the next.
  afterEach(() => {
    stripe.clearEvents();
  });
});
