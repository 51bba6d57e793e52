import { WorkflowClient } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { randomUUID } from 'node:crypto';
import type { createEmailActivities } from '../../activities/email/email';
import type { createMaintenanceActivities } from '../../activities/maintenance/maintenance';
import type { createRetentionActivities } from '../../activities/maintenance/retention';
import type { createNoticeActivities } from '../../activities/notices/expiry-notices';
import type { createFollowUpActivities } from '../../activities/topups/follow-ups';
import type { createTopupActivities } from '../../activities/topups/topup';
import { errors } from '../../domain/errors';
import { emailKeys } from '../../email/templates';
import { startOnce } from '../../temporal/start-once';
import {
  MAINTENANCE_WORKFLOW_TYPE,
  type MaintenanceInput,
  type MaintenanceResult,
} from '../../workflows/maintenance/contract';
import {
  CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE,
  EXPIRY_NOTICE_EMAIL_DEADLINE_MS,
  type CreditExpiryNoticeInput,
  type ExpiryNoticeSweepInput,
} from '../../workflows/notices/contract';
import { testDataConverter } from '../support/payload-keys';
import { StubActivities } from '../support/stub-activities';
import { startWorkflowTier, type WorkflowTier } from '../support/workflow-tier';

type Activities = ReturnType<typeof createMaintenanceActivities> &
  ReturnType<typeof createEmailActivities> &
  ReturnType<typeof createTopupActivities> &
  ReturnType<typeof createFollowUpActivities> &
  ReturnType<typeof createNoticeActivities> &
  ReturnType<typeof createRetentionActivities>;

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
/** CREDIT_EXPIRY_NOTICE's default. */
const AHEAD_MS = 7 * DAY_MS;
/** The longest pause between two tries of an email (the receipt activity's retry policy). */
const LONGEST_PAUSE_MS = 10 * 60_000;

/**
 * Expiry notices over days, on the time-skipping server with stub activities: the maintenance
 * schedule's runs each take the notice step, and the notice's email is retried until the
 * credits it announces expire, no longer. (The notices themselves, once per grant against real
 * PostgreSQL: test/notices/expiry-notices.test.ts.)
 */
describe('expiry notices over days (stub activities, time skipped)', () => {
  const stubs = new StubActivities<Activities>();
  let tier: WorkflowTier;

  beforeAll(async () => {
    tier = await startWorkflowTier(stubs);
  });
  afterAll(async () => {
    await tier?.close();
  });

  const now = () => tier.env.currentTimeMs();
  // Grant IDs name the notices' runs: this file's own, on a server it shares with no other.
  let lastGrantId = 0;
  const newGrantId = () => (lastGrantId += 1);

  /** The patches a run's history records (its `core_patch` markers). */
  async function patchesOf(client: WorkflowClient, workflowId: string): Promise<string[]> {
    const { events } = await client.getHandle(workflowId).fetchHistory();
    return (events ?? []).flatMap((event) => {
      const marker = event.markerRecordedEventAttributes;
      const [payload] =
        marker?.markerName === 'core_patch' ? (marker.details?.['patch-data']?.payloads ?? []) : [];
      return payload ? [defaultPayloadConverter.fromPayload<{ id: string }>(payload).id] : [];
    });
  }

  /** Stubs that deliver a notice's email at once, and what they were asked. */
  function deliveringNotice(emailKey: string) {
    return stubs.forRun(emailKey, { sendReceipt: () => Promise.resolve({ status: 'sent' }) });
  }

  /**
   * A grant as the sweep sees it: its expiry, and when (if ever) it was spent to zero or voided,
   * all in the server's time.
   */
  interface ModelGrant {
    id: number;
    accountId: string;
    expiresAtMs: number;
    goneAtMs: number | null;
    noticedAtMs: number | null;
  }

  /**
   * The notice activity against grants held in memory, deciding as credits/expiry-notices.ts does
   * in SQL (open, credits left, not noticed, expiring within the window but not yet, of the run's
   * accounts); a notice starts its email's run as the real activity does (temporal/start-once.ts).
   * That a grant is noticed once whatever runs race is the engine's, tested against PostgreSQL.
   */
  function noticeSweep(grants: ModelGrant[]) {
    return async (input: ExpiryNoticeSweepInput = {}) => {
      const at = await now();
      const due = grants.filter(
        (grant) =>
          (input.accountIds ?? [grant.accountId]).includes(grant.accountId) &&
          grant.noticedAtMs === null &&
          (grant.goneAtMs === null || grant.goneAtMs > at) &&
          grant.expiresAtMs > at &&
          grant.expiresAtMs <= at + AHEAD_MS,
      );
      for (const grant of due) {
        grant.noticedAtMs = at;
        const emailKey = emailKeys.expiryNotice(grant.id);
        deliveringNotice(emailKey);
        const input: CreditExpiryNoticeInput = {
          accountId: grant.accountId,
          grantId: grant.id,
          emailKey,
          expiresAtMs: grant.expiresAtMs,
        };
        await startOnce(tier.env.client.workflow, CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE, {
          workflowId: emailKey,
          taskQueue: tier.taskQueue,
          args: [input],
        });
      }
      return { notices: due.length, emails: due.length };
    };
  }

  it('when the maintenance schedule runs twice a day for two weeks, then every run takes the notice step and each grant is noticed once, on the first run inside its window', async () => {
    const t0 = await now();
    const accountId = `acct_${randomUUID()}`;
    const insideAtOnce = newGrantId();
    const entersLater = newGrantId();
    const spentFirst = newGrantId();
    const voidedFirst = newGrantId();
    const endsToday = newGrantId();
    const otherAccount = newGrantId();
    const grant = (id: number, expiresInMs: number, goneInMs: number | null = null): ModelGrant => ({
      id,
      accountId,
      expiresAtMs: t0 + expiresInMs,
      goneAtMs: goneInMs === null ? null : t0 + goneInMs,
      noticedAtMs: null,
    });
    const grants = [
      grant(insideAtOnce, 3 * DAY_MS),
      grant(entersLater, 10 * DAY_MS),
      grant(spentFirst, 9 * DAY_MS, DAY_MS),
      grant(voidedFirst, 9 * DAY_MS, 1.5 * DAY_MS),
      grant(endsToday, 12 * HOUR_MS),
      { ...grant(otherAccount, 2 * DAY_MS), accountId: `acct_${randomUUID()}` },
    ];
    const sweep = noticeSweep(grants);
    // The schedule's clock: time passes between runs only. The test environment's own client
    // lets the server skip time while it waits for a result, past activities still running.
    const clockStill = new WorkflowClient({
      connection: tier.env.connection,
      namespace: tier.env.namespace ?? 'default',
      dataConverter: testDataConverter(),
    });

    const results: MaintenanceResult[] = [];
    const runIds: string[] = [];
    const runs = [];
    for (let run = 0; run <= 28; run += 1) {
      const workflowId = `maintenance-${randomUUID()}`;
      runIds.push(workflowId);
      runs.push(
        stubs.forRun(workflowId, {
          expireDueGrants: () => Promise.resolve({ grants: 0, credits: 0 }),
          releaseDueReservations: () => Promise.resolve({ released: 0 }),
          sweepOutbox: () => Promise.resolve({ delivered: 0, failed: 0, waiting: 0 }),
          startUnstartedBalanceFollowUps: () => Promise.resolve(0),
          failAbandonedTopups: () => Promise.resolve(0),
          sendExpiryNotices: sweep,
          deleteExpiredRecords: () => Promise.resolve({ outboundEvents: 0, emails: 0, rejectedEvents: 0 }),
        }),
      );
      const input: MaintenanceInput = { followUpAccounts: [accountId], expiryNoticeAccounts: [accountId] };
      results.push(
        (await clockStill.execute(MAINTENANCE_WORKFLOW_TYPE, {
          taskQueue: tier.taskQueue,
          workflowId,
          args: [input],
        })) as MaintenanceResult,
      );
      await tier.env.sleep(12 * HOUR_MS);
    }

    // Every run took the step, once, before the retention sweep, for the accounts it was given.
    for (const run of runs) {
      expect(run.names().slice(-2)).toEqual(['sendExpiryNotices', 'deleteExpiredRecords']);
      expect(run.calls('sendExpiryNotices')).toEqual([{ accountIds: [accountId] }]);
    }
    // A run's history marks the step with its patch, so runs recorded before it replay without it.
    expect(await patchesOf(clockStill, runIds[0] as string)).toContain('credit-expiry-notices');
    expect(results.reduce((sum, result) => sum + (result.expiryNotices ?? 0), 0)).toBe(3);
    // Noticed on the first run inside the window: at once, or within the half day after it opened.
    const noticedAfter = (id: number) => {
      const noticed = grants.find((each) => each.id === id)?.noticedAtMs;
      return noticed === null || noticed === undefined ? null : noticed - t0;
    };
    expect(noticedAfter(insideAtOnce)).toBeLessThan(HOUR_MS);
    expect(noticedAfter(endsToday)).toBeLessThan(HOUR_MS);
    expect(noticedAfter(entersLater)).toBeGreaterThanOrEqual(3 * DAY_MS);
    expect(noticedAfter(entersLater)).toBeLessThanOrEqual(3.5 * DAY_MS);
    expect([spentFirst, voidedFirst, otherAccount].map(noticedAfter)).toEqual([null, null, null]);
    // One delivery run per noticed grant, which sent its email once.
    for (const id of [insideAtOnce, entersLater, endsToday]) {
      const handle = tier.env.client.workflow.getHandle(emailKeys.expiryNotice(id));
      expect(await handle.result()).toEqual({ stage: 'sent' });
    }
  });

  it('when a notice’s email cannot be delivered, then it is retried until the credits it announces expire (for 3 days at most) and then recorded failed', async () => {
    const startedAt = await now();
    const failing = (emailKey: string) =>
      stubs.forRun(emailKey, {
        sendReceipt: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:25')),
        recordReceiptFailure: () => Promise.resolve(),
      });
    const start = (grantId: number, expiresInMs: number) => {
      const emailKey = emailKeys.expiryNotice(grantId);
      const run = failing(emailKey);
      const input: CreditExpiryNoticeInput = {
        accountId: `acct_${randomUUID()}`,
        grantId,
        emailKey,
        expiresAtMs: startedAt + expiresInMs,
      };
      return {
        run,
        emailKey,
        handle: tier.env.client.workflow.start(CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE, {
          taskQueue: tier.taskQueue,
          workflowId: emailKey,
          args: [input],
        }),
      };
    };
    const soon = start(newGrantId(), 2 * DAY_MS);
    const later = start(newGrantId(), 6 * DAY_MS);

    // When the run closed by the server's clock: the test's clock may have skipped further on by
    // the time the result is read (other runs' timers are due on the same server).
    const endedAfter = async (started: ReturnType<typeof start>) => {
      const handle = await started.handle;
      expect(await handle.result()).toEqual({ stage: 'failed' });
      const { closeTime } = await handle.describe();
      return (closeTime?.getTime() ?? Number.NaN) - startedAt;
    };
    const soonEnded = await endedAfter(soon);
    expect(soonEnded).toBeGreaterThan(2 * DAY_MS - LONGEST_PAUSE_MS);
    expect(soonEnded).toBeLessThanOrEqual(2 * DAY_MS + LONGEST_PAUSE_MS);
    const laterEnded = await endedAfter(later);
    expect(laterEnded).toBeGreaterThan(EXPIRY_NOTICE_EMAIL_DEADLINE_MS - LONGEST_PAUSE_MS);
    expect(laterEnded).toBeLessThan(msToNumber('4 days'));
    for (const { run, emailKey } of [soon, later]) {
      expect(run.calls('sendReceipt').length).toBeGreaterThan(10);
      expect(run.calls('recordReceiptFailure')).toEqual([
        { receiptKey: emailKey, reason: expect.stringMatching(/ECONNREFUSED/) },
      ]);
    }
  });

  it('when SMTP refuses the address for good, then the notice is recorded failed at once', async () => {
    const emailKey = emailKeys.expiryNotice(newGrantId());
    const run = stubs.forRun(emailKey, {
      sendReceipt: () => Promise.reject(errors.smtpRefused('550 5.1.1 no such user')),
      recordReceiptFailure: () => Promise.resolve(),
    });
    const input: CreditExpiryNoticeInput = {
      accountId: `acct_${randomUUID()}`,
      grantId: 1,
      emailKey,
      expiresAtMs: (await now()) + 5 * DAY_MS,
    };
    const result = await tier.env.client.workflow.execute(CREDIT_EXPIRY_NOTICE_WORKFLOW_TYPE, {
      taskQueue: tier.taskQueue,
      workflowId: emailKey,
      args: [input],
    });
    expect(result).toEqual({ stage: 'failed' });
    expect(run.calls('sendReceipt')).toHaveLength(1);
    expect(run.names()).toEqual(['sendReceipt', 'recordReceiptFailure']);
  });
});
