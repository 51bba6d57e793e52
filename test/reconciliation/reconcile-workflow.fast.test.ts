import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, type Payload } from '@temporalio/common';
import type { createReconcileActivities } from '../../activities/reconciliation/reconcile';
import { errors } from '../../domain/errors';
import { FailureType } from '../../domain/failure-types';
import {
  RECONCILE_WORKFLOW_TYPE,
  reconcileRunKey,
  reconcileScheduleId,
  reconcileStatusQuery,
  type ReconcilePageResult,
  type ReconcileResult,
  type ReconcileRun,
  type ReconcileWorkflowInput,
} from '../../workflows/reconciliation/contract';
import type { reconcileWorkflow } from '../../workflows/reconciliation/reconcile';
import { StubActivities } from '../support/stub-activities';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createReconcileActivities>;

/**
 * The reconcile workflow's walk through Stripe's Events API, with stub activities: every page of
 * every slice and type group in order, a continue-as-new that carries the run on, and a refusal
 * from Stripe (or no Stripe key at all) that fails the run at once instead of retrying for hours.
 */
describe('reconcile workflow (stub activities, time skipped)', () => {
  const stubs = new StubActivities<Activities>();
  let tier: WorkflowTier;
  let runs = 0;

  beforeAll(async () => {
    tier = await startWorkflowTier(stubs);
  });
  afterAll(async () => {
    await tier?.close();
  });

  const run = (overrides: Partial<ReconcileRun> = {}): ReconcileRun => ({
    runId: 7,
    fromSeconds: 1_000_000,
    untilSeconds: 1_000_000 + 2 * 3600,
    watermark: 'credits-reconcile:fast',
    typeGroups: [['checkout.session.completed', 'invoice.paid'], ['charge.refunded']],
    sliceSeconds: 3600,
    ...overrides,
  });
  const page = (
    nextCursor: string | null,
    counts: Partial<ReconcilePageResult> = {},
  ): ReconcilePageResult => ({
    events: 3,
    started: 1,
    duplicates: 2,
    ignored: 0,
    rejected: 0,
    nextCursor,
    watermarkSeconds: null,
    ...counts,
  });
  const finished = (recorded: ReconcileRun): ReconcileResult => ({
    runId: recorded.runId,
    fromSeconds: recorded.fromSeconds,
    untilSeconds: recorded.untilSeconds,
    watermarkSeconds: recorded.untilSeconds,
    pages: 0,
    events: 0,
    started: 0,
    duplicates: 0,
    ignored: 0,
    rejected: 0,
  });
  /** A scheduled run's workflow ID (it starts with the schedule's ID, as the schedule's runs do). */
  function scheduledRunId(): string {
    runs += 1;
    return `${reconcileScheduleId(tier.taskQueue)}-${Date.now()}-${runs}`;
  }
  async function start(workflowId: string, input: ReconcileWorkflowInput = {}) {
    const handle = await tier.env.client.workflow.start<typeof reconcileWorkflow>(RECONCILE_WORKFLOW_TYPE, {
      taskQueue: tier.taskQueue,
      workflowId,
      args: [input],
    });
    return { handle, runKey: reconcileRunKey(workflowId, handle.firstExecutionRunId) };
  }

  it('when a scheduled run reads its window, then it reads every page of every type group of every slice, oldest slice first, and closes the run completed', async () => {
    const recorded = run();
    const workflowId = scheduledRunId();
    const calls = stubs.forRun(workflowId, {
      beginReconcileRun: () => Promise.resolve(recorded),
      // The first group of the first slice has two pages; every other has one.
      reconcileEventPage: ({ key }) =>
        Promise.resolve(page(key.slice === 0 && key.group === 0 && key.page === 0 ? 'evt_cursor' : null)),
      finishReconcileRun: () => Promise.resolve({ ...finished(recorded), pages: 5 }),
    });
    const { handle, runKey } = await start(workflowId);

    expect(await handle.result()).toEqual({ ...finished(recorded), pages: 5 });
    expect(calls.calls('beginReconcileRun')).toEqual([
      { runKey, watermark: reconcileScheduleId(tier.taskQueue), window: null },
    ]);
    expect(
      calls.calls('reconcileEventPage').map(({ key, cursor, runKey: key2 }) => [key, cursor, key2]),
    ).toEqual([
      [{ runId: 7, slice: 0, group: 0, page: 0 }, null, runKey],
      [{ runId: 7, slice: 0, group: 0, page: 1 }, 'evt_cursor', runKey],
      [{ runId: 7, slice: 0, group: 1, page: 0 }, null, runKey],
      [{ runId: 7, slice: 1, group: 0, page: 0 }, null, runKey],
      [{ runId: 7, slice: 1, group: 1, page: 0 }, null, runKey],
    ]);
    expect(calls.calls('finishReconcileRun')).toEqual([{ runId: 7, status: 'completed' }]);
  });

  it('when a backfill is given a window, then its run is recorded with that window and moves no watermark', async () => {
    const window = { fromSeconds: 2_000_000, untilSeconds: 2_000_600 };
    runs += 1;
    const workflowId = `reconcile-backfill-${Date.now()}-${runs}`;
    const recorded = run({ ...window, watermark: null, typeGroups: [['charge.refunded']] });
    const calls = stubs.forRun(workflowId, {
      beginReconcileRun: () => Promise.resolve(recorded),
      reconcileEventPage: () => Promise.resolve(page(null)),
      finishReconcileRun: () => Promise.resolve(finished(recorded)),
    });
    const { handle, runKey } = await start(workflowId, { window });

    await handle.result();
    expect(calls.calls('beginReconcileRun')).toEqual([{ runKey, watermark: null, window }]);
    expect(calls.calls('reconcileEventPage')).toHaveLength(1);
  });

  it('when a window has more pages than one history holds, then the run continues as new with its run, position and tally, and reads on where it stopped', async () => {
    const recorded = run({ typeGroups: [['charge.refunded']], untilSeconds: 1_000_000 + 3600 });
    const pages = 205;
    const workflowId = scheduledRunId();
    const calls = stubs.forRun(workflowId, {
      beginReconcileRun: () => Promise.resolve(recorded),
      reconcileEventPage: ({ key }) => Promise.resolve(page(key.page + 1 < pages ? `evt_${key.page}` : null)),
      finishReconcileRun: () => Promise.resolve({ ...finished(recorded), pages }),
    });
    const { handle } = await start(workflowId);

    expect(await handle.result()).toMatchObject({ pages });
    const first = await tier.env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).describe();
    expect(first.status.name).toBe('CONTINUED_AS_NEW');
    // Each page once, in order, across both runs; the run is recorded and closed once.
    expect(calls.calls('reconcileEventPage').map(({ key }) => key.page)).toEqual(
      Array.from({ length: pages }, (_, i) => i),
    );
    expect(calls.calls('reconcileEventPage')[200]).toMatchObject({ cursor: 'evt_199' });
    expect(calls.calls('beginReconcileRun')).toHaveLength(1);
    expect(calls.calls('finishReconcileRun')).toEqual([{ runId: 7, status: 'completed' }]);
    // What the second run was given to go on with.
    const history = await tier.env.client.workflow.getHandle(workflowId).fetchHistory();
    const [input] = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    expect(await tier.readPayload(input as Payload)).toEqual({
      resume: {
        run: recorded,
        position: { slice: 0, group: 0, page: 200, cursor: 'evt_199' },
        tally: { pages: 200, events: 600, started: 200, duplicates: 400, ignored: 0, rejected: 0 },
      },
    });
  });

  it('when Stripe refuses the key, then the page is not retried, the run is recorded failed with the refusal, and the workflow fails', async () => {
    const recorded = run();
    const workflowId = scheduledRunId();
    const calls = stubs.forRun(workflowId, {
      beginReconcileRun: () => Promise.resolve(recorded),
      reconcileEventPage: () =>
        Promise.reject(errors.stripeRefused('to list events (401)', 'Invalid API Key provided')),
      finishReconcileRun: () => Promise.resolve(finished(recorded)),
    });
    const { handle } = await start(workflowId);

    const failure = await handle.result().then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ActivityFailure);
    expect((cause as ActivityFailure).cause).toBeInstanceOf(ApplicationFailure);
    expect(((cause as ActivityFailure).cause as ApplicationFailure).type).toBe(FailureType.StripeRefused);
    expect(calls.calls('reconcileEventPage')).toHaveLength(1);
    expect(calls.calls('finishReconcileRun')).toEqual([
      {
        runId: 7,
        status: 'failed',
        error: 'StripeRefused: Stripe refused to list events (401): Invalid API Key provided',
      },
    ]);
    expect(await handle.query(reconcileStatusQuery)).toMatchObject({
      stage: 'failed',
      runId: 7,
      position: { slice: 0, group: 0, page: 0, cursor: null },
    });
  });

  it('when the worker has no Stripe key, then the run fails at once as not configured, before any page', async () => {
    const workflowId = scheduledRunId();
    const calls = stubs.forRun(workflowId, {
      beginReconcileRun: () => Promise.reject(errors.reconcileNotConfigured()),
    });
    const { handle } = await start(workflowId);

    await expect(handle.result()).rejects.toMatchObject({
      cause: { cause: { type: FailureType.ReconcileNotConfigured } },
    });
    // Not retried: without a key nothing would change.
    expect(calls.names()).toEqual(['beginReconcileRun']);
  });
});
