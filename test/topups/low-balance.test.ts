import { randomUUID } from 'node:crypto';
import { debitCredits } from '../../credits/debits';
import { emailKeys } from '../../email/templates';
import { grantDirectly, runMaintenance } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';
import { waitUntil } from '../support/wait';

const LOW_SUBJECT = 'Your credit balance is running low';

describe('low-balance notices', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function fundedAccount(credits: number, threshold: number) {
    const account = await h.newAccount();
    const grant = await grantDirectly(h.sql, account.id, { key: `fund-${randomUUID()}`, amount: credits });
    const saved = await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold });
    expect(saved.status).toBe(200);
    return { ...account, grantId: grant.grant.id };
  }

  const debit = (accountId: string, amount: number) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, {
      amount,
      idempotencyKey: `job-${randomUUID()}`,
      reason: 'work',
    });

  async function lowEvents(accountId: string) {
    const rows = await h.sql<{ data: { available: number; threshold: number; notice: number } }[]>`
      SELECT data FROM outbound_events WHERE account_id = ${accountId} AND type = 'balance.low' ORDER BY seq`;
    return rows.map((row) => row.data);
  }

  const lowMail = (email: string) => h.smtp.to(email).filter((mail) => mail.subject === LOW_SUBJECT);

  it('when a debit takes the balance below the threshold, then one email and one balance.low event; further debits below it send nothing more', async () => {
    const account = await fundedAccount(1000, 300);
    expect((await debit(account.id, 600)).status).toBe(201); // 400 left: still above
    expect((await debit(account.id, 150)).status).toBe(201); // 250: crossed
    await h.smtp.waitForMail(account.email, 1);
    expect((await debit(account.id, 100)).status).toBe(201); // 150: still below
    await h.smtp.settledMail(account.email, 1);

    expect(lowMail(account.email)).toHaveLength(1);
    expect(lowMail(account.email)[0]?.text).toContain('250 credits available, below the 300');
    expect(await lowEvents(account.id)).toEqual([{ available: 250, threshold: 300, notice: 1 }]);
    const settings = await h.api('GET', `/v1/accounts/${account.id}/low-balance`);
    expect(settings.body).toMatchObject({ threshold: 300, armed: false, notices: 1 });
  });

  it('when the balance is back at or above the threshold, then it re-arms and the next crossing sends a second notice', async () => {
    const account = await fundedAccount(500, 300);
    await debit(account.id, 250); // 250: first notice
    await h.smtp.waitForMail(account.email, 1);
    await grantDirectly(h.sql, account.id, { key: 'refill', amount: 50 }); // exactly 300: re-armed
    expect((await h.api('GET', `/v1/accounts/${account.id}/low-balance`)).body.armed).toBe(true);
    await debit(account.id, 1); // 299: second notice
    await h.smtp.settledMail(account.email, 2);

    expect(lowMail(account.email)).toHaveLength(2);
    expect((await lowEvents(account.id)).map((event) => event.notice)).toEqual([1, 2]);
  });

  it('when a revocation (a voided grant) takes the balance below the threshold, then it is noticed too', async () => {
    const account = await fundedAccount(100, 50);
    const promo = await grantDirectly(h.sql, account.id, {
      key: 'promo',
      amount: 200,
      category: 'promotional',
    });
    await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold: 150 }); // 300: armed
    const voided = await h.api('POST', `/v1/accounts/${account.id}/grants/${promo.grant.id}/void`, {
      reason: 'granted by mistake',
    });
    expect(voided.status).toBe(200);
    // The void ran in the API without a start of its own: the maintenance schedule starts the notice.
    await runMaintenance(h, { followUpsOf: [account.id] });
    await h.smtp.settledMail(account.email, 1);
    expect(lowMail(account.email)).toHaveLength(1);
    expect(await lowEvents(account.id)).toEqual([{ available: 100, threshold: 150, notice: 1 }]);
  });

  it('when a debit commits but its follow-up is never started (a crash), then the maintenance schedule starts it', async () => {
    const account = await fundedAccount(100, 80);
    // Straight to the database, as a process that died after its commit would have left it.
    await debitCredits(h.sql, { accountId: account.id, amount: 30, idempotencyKey: 'lost', reason: 'work' });
    const pending = await h.sql<{ kind: string; facts: unknown }[]>`
      SELECT kind, facts FROM balance_follow_ups WHERE account_id = ${account.id} AND started_at IS NULL`;
    expect(pending).toEqual([
      { kind: 'low_balance_notice', facts: { notice: 1, available: 70, threshold: 80, autoTopup: false } },
    ]);
    // Nothing is queued until the notice's run queues it: the movement wrote no email.
    expect(await h.sql`SELECT 1 FROM email_outbox WHERE account_id = ${account.id}`).toHaveLength(0);

    const run = await runMaintenance(h, { followUpsOf: [account.id] });
    expect(run.followUpsStarted).toBe(1);
    const [row] = await h.sql`SELECT started_at FROM balance_follow_ups WHERE account_id = ${account.id}`;
    expect(row?.started_at).not.toBeNull();
    // The notice's run queued and sent its email by the time it ends.
    const notice = h.temporal.workflow.getHandle(emailKeys.lowBalance(account.id, 1));
    expect(await notice.result()).toEqual({ stage: 'sent' });
    expect(lowMail(account.email)).toHaveLength(1);
    expect(lowMail(account.email)[0]?.text).toContain('70 credits available, below the 80');
  });

  it('when many follow-ups were never started, then one maintenance run starts them all in one activity, not a child workflow each', async () => {
    const accounts = await Promise.all(Array.from({ length: 12 }, () => fundedAccount(100, 80)));
    for (const account of accounts) {
      await debitCredits(h.sql, {
        accountId: account.id,
        amount: 30,
        idempotencyKey: 'lost',
        reason: 'work',
      });
    }
    const workflowId = `maintenance-many-${randomUUID()}`;
    const run = (await h.temporal.workflow.execute('maintenanceWorkflow', {
      taskQueue: h.config.temporal.taskQueue,
      workflowId,
      args: [{ followUpAccounts: accounts.map((account) => account.id) }],
    })) as { followUpsStarted: number };
    expect(run.followUpsStarted).toBe(12);
    const events = (await h.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    expect(events.filter((event) => event.startChildWorkflowExecutionInitiatedEventAttributes)).toEqual([]);
    const activities = events.flatMap(
      (event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
    );
    expect(activities.filter((name) => name === 'startUnstartedBalanceFollowUps')).toHaveLength(1);
    for (const account of accounts) {
      const notice = h.temporal.workflow.getHandle(emailKeys.lowBalance(account.id, 1));
      expect(await notice.result()).toEqual({ stage: 'sent' });
      expect(lowMail(account.email)).toHaveLength(1);
    }
    const unstarted = await h.sql`
      SELECT 1 FROM balance_follow_ups
      WHERE account_id = ANY (${accounts.map((account) => account.id)}) AND started_at IS NULL`;
    expect(unstarted).toHaveLength(0);
  });

  it('when 50 debits cross the threshold at once, then exactly one of them sends the notice', async () => {
    const account = await fundedAccount(1000, 500);
    const answers = await Promise.all(Array.from({ length: 50 }, () => debit(account.id, 15)));
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 201));
    await h.smtp.settledMail(account.email, 1, 1000);
    expect(lowMail(account.email)).toHaveLength(1);
    expect(await lowEvents(account.id)).toHaveLength(1);
  });

  it('when the threshold is set while the balance is already below it, then nothing is sent until it has been back above it', async () => {
    const account = await fundedAccount(100, 200);
    expect((await h.api('GET', `/v1/accounts/${account.id}/low-balance`)).body.armed).toBe(false);
    await debit(account.id, 10);
    await h.api('DELETE', `/v1/accounts/${account.id}/low-balance`);
    expect((await h.api('GET', `/v1/accounts/${account.id}/low-balance`)).body.error.code).toBe(
      'low_balance_not_set',
    );
    await debit(account.id, 10);
    const [queued] =
      await h.sql`SELECT count(*)::int AS n FROM email_outbox WHERE account_id = ${account.id}`;
    expect(queued?.n).toBe(0);
  });

  it('when the settings are invalid or the account unknown, then a stable error code and nothing changes', async () => {
    const account = await h.newAccount();
    const zero = await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold: 0 });
    expect(zero.status).toBe(400);
    expect(zero.body.error.code).toBe('invalid_request');
    const extra = await h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold: 5, x: 1 });
    expect(extra.body.error.code).toBe('invalid_request');
    const unknown = await h.api('PUT', `/v1/accounts/acct_${randomUUID()}/low-balance`, { threshold: 5 });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('account_not_found');
    const readOnly = await h.api('GET', `/v1/accounts/${account.id}/low-balance`);
    expect(readOnly.body.error.code).toBe('low_balance_not_set');
  });

  describe('a threshold deleted and set again', () => {
    it('when the low-balance threshold is deleted and set again, then the next crossing still sends its notice', async () => {
      const account = await h.newAccount();
      await grantDirectly(h.sql, account.id, { key: `fund-${randomUUID()}`, amount: 1000 });
      const low = (threshold: number) =>
        h.api('PUT', `/v1/accounts/${account.id}/low-balance`, { threshold });
      const lowMail = () => h.smtp.to(account.email).filter((mail) => mail.subject === LOW_SUBJECT);
      expect((await low(500)).status).toBe(200);
      await debit(account.id, 600); // 400: first notice
      await waitUntil(() => lowMail().length === 1, { what: 'the first notice' });

      expect((await h.api('DELETE', `/v1/accounts/${account.id}/low-balance`)).status).toBe(204);
      expect((await low(500)).body).toMatchObject({ armed: false });
      await grantDirectly(h.sql, account.id, { key: `refill-${randomUUID()}`, amount: 200 }); // 600: re-armed
      await debit(account.id, 200); // 400: a second crossing
      await waitUntil(() => lowMail().length === 2, { what: 'the second notice', timeoutMs: 20_000 });
      const events = await h.sql<{ notice: string }[]>`
        SELECT data->>'notice' AS notice FROM outbound_events
        WHERE account_id = ${account.id} AND type = 'balance.low' ORDER BY seq`;
      expect(events.map((row) => row.notice)).toEqual(['1', '2']);
    });
  });
});
