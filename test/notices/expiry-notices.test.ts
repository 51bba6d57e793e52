import { WorkflowNotFoundError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createNoticeActivities } from '../../activities/notices/expiry-notices';
import { recordExpiryNotice } from '../../credits/index';
import { emailKeys } from '../../email/templates';
import type { ExpiryNoticeSweepInput, ExpiryNoticeSweepResult } from '../../workflows/notices/contract';
import { grantDirectly, runMaintenance } from '../support/billing';
import { ADMIN_API_KEY, API_KEY, startHarness, type Harness } from '../support/harness';
import { silentLogger } from '../support/quiet-runtime';

const DAY_MS = 24 * 3600_000;
/**
 * This file's notice window. Other files' workers run the default (7 days), and a worker that a
 * test runs as production does (worker/main.ts) also runs the maintenance schedule, which
 * notices every account's grants: this file's grants expire past 7 days, so only its own
 * sweeps (scoped to its accounts) ever notice them, on its own worker and mail server.
 */
const WINDOW_MS = 30 * DAY_MS;
const WINDOW_SECONDS = WINDOW_MS / 1000;
const READ_KEY = 'test_read_key_0123456789abcdef';

const inDays = (days: number) => new Date(Date.now() + days * DAY_MS);
/** An instant as the notice writes it: `2026-12-08 at 14:05 UTC`. */
const asWritten = (at: Date) => `${at.toISOString().slice(0, 10)} at ${at.toISOString().slice(11, 16)} UTC`;

describe('expiry notices', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      creditExpiryNoticeMs: WINDOW_MS,
      configOverrides: {
        BILLING_API_KEYS: [API_KEY, `reader:read:${READ_KEY}`, `ops:admin:${ADMIN_API_KEY}`].join(','),
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function expiringEvents(accountId: string) {
    const rows = await h.sql<{ data: Record<string, unknown> }[]>`
      SELECT data FROM outbound_events WHERE account_id = ${accountId} AND type = 'credits.expiring'
      ORDER BY seq`;
    return rows.map((row) => row.data);
  }

  async function outboxOf(accountId: string) {
    return h.sql<{ key: string; status: string }[]>`
      SELECT key, status FROM email_outbox WHERE account_id = ${accountId} ORDER BY id`;
  }

  const sweep = (accountId: string) => runMaintenance(h, { expiryNoticesOf: [accountId] });

  const debit = (accountId: string, amount: number, key: string) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, { amount, idempotencyKey: key, reason: 'work' });

  /** The notice activity as a worker with this window would run it, outside any workflow. */
  function noticeActivity(creditExpiryNoticeMs: number | null) {
    const activities = createNoticeActivities({
      sql: h.sql,
      workflows: { isRunning: () => Promise.resolve(false) },
      config: { creditExpiryNoticeMs },
    });
    const env = new MockActivityEnvironment({}, { logger: silentLogger });
    return (accountId: string) =>
      env.run<[ExpiryNoticeSweepInput], ExpiryNoticeSweepResult, typeof activities.sendExpiryNotices>(
        activities.sendExpiryNotices,
        { accountIds: [accountId] },
      );
  }

  it('when a grant is created already inside the notice window, then the next sweep sends one credits.expiring event and one email, however many sweeps overlap or follow', async () => {
    const account = await h.newAccount();
    const expiresAt = inDays(10);
    const { grant } = await grantDirectly(h.sql, account.id, { key: 'pack', amount: 1500, expiresAt });
    // Outside the window, and never expiring: nothing to say about either.
    await grantDirectly(h.sql, account.id, { key: 'later', amount: 50, expiresAt: inDays(40) });
    await grantDirectly(h.sql, account.id, { key: 'forever', amount: 20 });

    const overlapping = await Promise.all([sweep(account.id), sweep(account.id), sweep(account.id)]);
    const following = [await sweep(account.id), await sweep(account.id)];
    const runs = [...overlapping, ...following];
    expect(runs.reduce((sum, run) => sum + (run.expiryNotices ?? 0), 0)).toBe(1);

    expect(await expiringEvents(account.id)).toEqual([
      {
        grant_id: grant.id,
        credits: 1500,
        expires_at: expiresAt.toISOString(),
        source: 'manual',
        category: 'paid',
        reference: `test:${account.id}:pack`,
      },
    ]);
    const notice = h.temporal.workflow.getHandle(emailKeys.expiryNotice(grant.id));
    expect(await notice.result()).toEqual({ stage: 'sent' });
    const mails = await h.smtp.settledMail(account.email, 1);
    expect(mails).toHaveLength(1);
    expect(mails[0]?.subject).toBe(`1,500 credits expire on ${expiresAt.toISOString().slice(0, 10)} (UTC)`);
    expect(mails[0]?.text).toContain(
      `1,500 unused credits on your account expire on ${asWritten(expiresAt)}.`,
    );
    expect(mails[0]?.text).toContain(`Account:     ${account.id}`);
    expect(mails[0]?.text).toContain(`Reference:   grant ${grant.id}`);
    expect(await outboxOf(account.id)).toEqual([{ key: emailKeys.expiryNotice(grant.id), status: 'sent' }]);
  });

  it('when sweeps race for one grant (retried activities, several workers), then exactly one records its notice, under the grant’s lock', async () => {
    const account = await h.newAccount();
    const { grant } = await grantDirectly(h.sql, account.id, {
      key: 'pack',
      amount: 300,
      expiresAt: inDays(9),
    });
    const sendExpiryNotices = noticeActivity(WINDOW_MS);
    const [sweeps, direct] = await Promise.all([
      Promise.all(Array.from({ length: 4 }, () => sendExpiryNotices(account.id))),
      Promise.all(
        Array.from({ length: 8 }, () =>
          h.sql.begin((tx) => recordExpiryNotice(tx, grant.id, { aheadSeconds: WINDOW_SECONDS })),
        ),
      ),
    ]);
    const recorded = sweeps.reduce((sum, run) => sum + run.notices, 0) + direct.filter(Boolean).length;
    expect(recorded).toBe(1);
    expect(await expiringEvents(account.id)).toHaveLength(1);
    // The email exists only if a sweep (not a bare engine call) recorded the notice: at most one.
    expect((await outboxOf(account.id)).length).toBeLessThanOrEqual(1);
    expect(await sendExpiryNotices(account.id)).toEqual({ notices: 0, emails: 0 });
  });

  it('when a grant was spent to zero, voided or expired before the sweep, then it gets no notice; one partly spent is noticed for what remains', async () => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'spent', amount: 100, expiresAt: inDays(10) });
    expect((await debit(account.id, 100, 'all-of-it')).status).toBe(201);
    const partly = await grantDirectly(h.sql, account.id, {
      key: 'partly',
      amount: 100,
      expiresAt: inDays(12),
    });
    expect((await debit(account.id, 40, 'some-of-it')).status).toBe(201);
    const voided = await grantDirectly(h.sql, account.id, {
      key: 'voided',
      amount: 70,
      expiresAt: inDays(10),
    });
    const voiding = await h.api('POST', `/v1/accounts/${account.id}/grants/${voided.grant.id}/void`, {
      reason: 'granted by mistake',
    });
    expect(voiding.status).toBe(200);
    const lapsed = await grantDirectly(h.sql, account.id, {
      key: 'lapsed',
      amount: 30,
      expiresAt: new Date(Date.now() - 60_000),
    });
    // Past its expiry but not closed yet (the expiry sweep has not run): too late for a notice.
    const tooLate = await h.sql.begin((tx) =>
      recordExpiryNotice(tx, lapsed.grant.id, { aheadSeconds: WINDOW_SECONDS }),
    );
    expect(tooLate).toBeNull();

    const run = await sweep(account.id);
    expect(run.expiryNotices).toBe(1);
    expect((await expiringEvents(account.id)).map((event) => [event.grant_id, event.credits])).toEqual([
      [partly.grant.id, 60],
    ]);
    const [mail] = await h.smtp.settledMail(account.email, 1);
    expect(mail?.text).toContain('60 unused credits');
    const noticed = await h.sql<{ id: string }[]>`
      SELECT id FROM credit_grants WHERE account_id = ${account.id} AND expiry_notice_at IS NOT NULL`;
    expect(noticed.map((row) => Number(row.id))).toEqual([partly.grant.id]);
  });

  it('when the account turned expiry emails off, then the credits.expiring event is still sent but no email is queued; turned on again, the next notice is emailed', async () => {
    const account = await h.newAccount();
    const settings = `/v1/accounts/${account.id}/notifications`;
    expect(await h.api('GET', settings, undefined, READ_KEY)).toEqual({
      status: 200,
      body: { accountId: account.id, expiryEmails: true },
    });
    expect(await h.api('PUT', settings, { expiryEmails: false }, API_KEY)).toEqual({
      status: 200,
      body: { accountId: account.id, expiryEmails: false },
    });
    const first = await grantDirectly(h.sql, account.id, { key: 'first', amount: 200, expiresAt: inDays(8) });

    expect((await sweep(account.id)).expiryNotices).toBe(1);
    expect((await expiringEvents(account.id)).map((event) => event.grant_id)).toEqual([first.grant.id]);
    expect(await outboxOf(account.id)).toEqual([]);
    await expect(
      h.temporal.workflow.getHandle(emailKeys.expiryNotice(first.grant.id)).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);

    expect((await h.api('PUT', settings, { expiryEmails: true })).body.expiryEmails).toBe(true);
    const second = await grantDirectly(h.sql, account.id, {
      key: 'second',
      amount: 80,
      expiresAt: inDays(11),
    });
    expect((await sweep(account.id)).expiryNotices).toBe(1);
    await h.smtp.settledMail(account.email, 1);
    expect(h.smtp.to(account.email)).toHaveLength(1);
    expect(h.smtp.to(account.email)[0]?.text).toContain('80 unused credits');
    expect((await expiringEvents(account.id)).map((event) => event.grant_id)).toEqual([
      first.grant.id,
      second.grant.id,
    ]);
  });

  it('when the notification settings are written with a read key, badly, or for an unknown account, then a stable error and nothing changes', async () => {
    const account = await h.newAccount();
    const settings = `/v1/accounts/${account.id}/notifications`;
    const byReader = await h.api('PUT', settings, { expiryEmails: false }, READ_KEY);
    expect(byReader.status).toBe(403);
    expect(byReader.body.error.code).toBe('insufficient_role');
    for (const body of [{ expiryEmails: 'no' }, { expiryEmails: false, lowBalance: true }, {}]) {
      const refused = await h.api('PUT', settings, body);
      expect({ body, status: refused.status, code: refused.body.error.code }).toEqual({
        body,
        status: 400,
        code: 'invalid_request',
      });
    }
    expect((await h.api('GET', settings)).body.expiryEmails).toBe(true);
    const unknown = `/v1/accounts/acct_unknown_${account.id}/notifications`;
    expect((await h.api('PUT', unknown, { expiryEmails: false })).body.error.code).toBe('account_not_found');
    expect((await h.api('GET', unknown)).status).toBe(404);
    expect(await h.sql`SELECT 1 FROM notification_settings WHERE account_id = ${account.id}`).toHaveLength(0);
  });

  it('when CREDIT_EXPIRY_NOTICE is off, or shorter than the time left, then the sweep notices nothing', async () => {
    const account = await h.newAccount();
    const { grant } = await grantDirectly(h.sql, account.id, {
      key: 'pack',
      amount: 90,
      expiresAt: inDays(10),
    });
    expect(await noticeActivity(null)(account.id)).toEqual({ notices: 0, emails: 0 });
    expect(await noticeActivity(7 * DAY_MS)(account.id)).toEqual({ notices: 0, emails: 0 });
    const [row] = await h.sql<{ expiry_notice_at: Date | null }[]>`
      SELECT expiry_notice_at FROM credit_grants WHERE id = ${grant.id}`;
    expect(row?.expiry_notice_at).toBeNull();
    expect(await expiringEvents(account.id)).toEqual([]);
    // The same grant, once the window reaches it.
    expect(await noticeActivity(WINDOW_MS)(account.id)).toEqual({ notices: 1, emails: 1 });
  });
});
