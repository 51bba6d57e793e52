import { invoiceStatusQuery } from '../../workflows/subscriptions/contract';
import { reviewSignal } from '../../workflows/reviews/contract';
import { summarizeInvoice } from '../../stripe/billing-objects';
import { checkoutSession, stripeEvent, subscription, type StripeEvent } from '../../stripe/fixtures/index';
import {
  checkedBalance,
  deliverAndSettle,
  grantsOf,
  ledgerOf,
  heldInvoice,
  newSubscription,
  PLANS,
  runMaintenance,
} from '../support/billing';
import { outboxRowsFor } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { sleep } from '../support/wait';

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('subscriptions', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function subscriptionRow(id: string) {
    const [row] = await h.sql<{ account_id: string | null; status: string | null; plan_id: string | null }[]>`
      SELECT account_id, status, plan_id FROM subscriptions WHERE id = ${id}`;
    return row ?? null;
  }

  it('when the four start events of a subscription arrive in every order, twice each, concurrently, then exactly one period is granted', async () => {
    const orders = permutations([0, 1, 2, 3]);
    const runs = await Promise.all(
      orders.map(async (order) => {
        const fixture = await newSubscription(h, 'basic');
        const events = fixture.startEvents();
        // Each event is sent in this run's order, each one twice at once; the 24 runs overlap.
        const started: Promise<unknown>[] = [];
        for (const index of order) {
          const event = events[index] as StripeEvent;
          started.push(h.deliver(event), h.deliver(event));
          await sleep(5);
        }
        await Promise.all(started);
        await deliverAndSettle(h, events);
        return fixture;
      }),
    );

    for (const fixture of runs) {
      expect(await checkedBalance(h, fixture.account.id)).toBe(PLANS.basic.credits);
      expect(await ledgerOf(h, fixture.account.id)).toEqual([
        expect.objectContaining({
          key: fixture.firstInvoice.id,
          delta: PLANS.basic.credits,
          kind: 'subscription',
        }),
      ]);
      expect(await subscriptionRow(fixture.subscriptionId)).toEqual({
        account_id: fixture.account.id,
        status: 'active',
        plan_id: 'basic-monthly',
      });
    }
    for (const fixture of runs) {
      await h.smtp.settledMail(fixture.account.email);
      const [receipt] = h.smtp.to(fixture.account.email);
      expect(receipt?.subject).toBe('Receipt: 1,000 credits added to your account');
      expect(h.smtp.to(fixture.account.email)).toHaveLength(1);
    }
  });

  it('when invoice.payment_succeeded arrives alone, then it is acknowledged and starts nothing', async () => {
    const fixture = await newSubscription(h);
    const event = stripeEvent('invoice.payment_succeeded', fixture.firstInvoice);
    expect(await h.deliver(event)).toEqual({
      status: 200,
      body: { received: true, workflowId: null, status: 'ignored' },
    });
  });

  it('when a rollover plan renews after its first period ended, then the new period is granted and unused credits stay', async () => {
    const fixture = await newSubscription(h, 'pro', { startedPeriodsAgo: 1 });
    await deliverAndSettle(h, fixture.startEvents());
    const spent = await h.api('POST', `/v1/accounts/${fixture.account.id}/debits`, {
      amount: 1200,
      idempotencyKey: 'job-1',
      reason: 'usage',
    });
    expect(spent.status).toBe(201);
    const renewal = fixture.renewal(1);
    const [result] = await deliverAndSettle(h, [stripeEvent('invoice.paid', renewal)]);
    expect(result).toMatchObject({ stage: 'completed', credits: 5000 });
    await runMaintenance(h);
    expect(await checkedBalance(h, fixture.account.id)).toBe(5000 - 1200 + 5000);
    expect((await ledgerOf(h, fixture.account.id)).map((row) => row.kind)).toEqual([
      'subscription',
      'debit',
      'subscription',
    ]);
    expect((await grantsOf(h, fixture.account.id)).map((grant) => grant.closed)).toEqual([null, null]);
  });

  it('when a period of a plan without rollover ends, then its unused credits expire once and bought credits stay', async () => {
    const fixture = await newSubscription(h, 'basic', { startedPeriodsAgo: 1 });
    await deliverAndSettle(h, fixture.startEvents());
    const pack = stripeEvent(
      'checkout.session.completed',
      checkoutSession({ accountId: fixture.account.id, packId: 'starter' }),
    );
    await deliverAndSettle(h, [pack]);
    // The period has ended: its credits are no longer spent; the pack's 100 are.
    const tooMuch = await h.api('POST', `/v1/accounts/${fixture.account.id}/debits`, {
      amount: 101,
      idempotencyKey: 'job-0',
      reason: 'usage',
    });
    expect(tooMuch.status).toBe(402);

    const renewal = fixture.renewal(1);
    // The renewal delivered twice under different event IDs; the sweep runs three times, twice at once.
    const [first] = await deliverAndSettle(h, [stripeEvent('invoice.paid', renewal)]);
    const [again] = await deliverAndSettle(h, [stripeEvent('invoice.paid', renewal)]);
    expect(first).toMatchObject({ stage: 'completed', credits: 1000 });
    expect(again).toMatchObject({ stage: 'already_granted' });
    await Promise.all([runMaintenance(h), runMaintenance(h)]);
    await runMaintenance(h);

    // All 1000 of the ended period expire; the 100 bought with the pack and the new period stay.
    expect(await checkedBalance(h, fixture.account.id)).toBe(100 + 1000);
    const [ended] = await grantsOf(h, fixture.account.id);
    const ledger = await ledgerOf(h, fixture.account.id);
    expect(ledger.filter((row) => row.kind === 'expiry')).toEqual([
      expect.objectContaining({ key: `expiry:grant:${ended?.id}`, delta: -1000 }),
    ]);
  });

  it('when renewals of a plan without rollover arrive out of order, then only the current period remains', async () => {
    const fixture = await newSubscription(h, 'basic', { startedPeriodsAgo: 2 });
    await deliverAndSettle(h, fixture.startEvents().slice(0, 2));
    const invoices = [fixture.renewal(2), fixture.firstInvoice, fixture.renewal(1)];
    for (const late of invoices) await deliverAndSettle(h, [stripeEvent('invoice.paid', late)]);
    await runMaintenance(h);
    expect(await checkedBalance(h, fixture.account.id)).toBe(PLANS.basic.credits);
    const grants = await grantsOf(h, fixture.account.id);
    expect(
      grants
        .filter((grant) => grant.closed === 'expired')
        .map((grant) => grant.key)
        .sort(),
    ).toEqual([fixture.firstInvoice.id, invoices[2]?.id as string].sort());
  });

  it('when a subscription whose plan expires on cancel ends, then its unused period credits expire and bought ones stay', async () => {
    const basic = await newSubscription(h, 'basic');
    await deliverAndSettle(h, basic.startEvents());
    const pack = checkoutSession({ accountId: basic.account.id, packId: 'starter' });
    await deliverAndSettle(h, [stripeEvent('checkout.session.completed', pack)]);
    const pro = await newSubscription(h, 'pro');
    await deliverAndSettle(h, pro.startEvents());
    const cancel = (fixture: typeof basic, priceId: string) =>
      stripeEvent(
        'customer.subscription.deleted',
        subscription({
          id: fixture.subscriptionId,
          customerId: fixture.customerId,
          priceId,
          status: 'canceled',
        }),
        { created: Math.floor(Date.now() / 1000) + 5 },
      );
    await deliverAndSettle(h, [cancel(basic, PLANS.basic.priceId), cancel(pro, PLANS.pro.priceId)]);
    await runMaintenance(h);
    // Basic expires on cancel: its 1000 go, the pack's 100 stay. Pro does not: its 5000 stay.
    expect(await checkedBalance(h, basic.account.id)).toBe(100);
    expect(await checkedBalance(h, pro.account.id)).toBe(5000);
  });

  it('when subscription updates arrive out of order, then the newest state stays, and deletion is final and told once', async () => {
    const fixture = await newSubscription(h, 'basic');
    await deliverAndSettle(h, fixture.startEvents());
    const t0 = Math.floor(Date.now() / 1000);
    const state = (status: string, priceId: string) =>
      subscription({ id: fixture.subscriptionId, customerId: fixture.customerId, priceId, status });
    const upgraded = stripeEvent('customer.subscription.updated', state('active', PLANS.pro.priceId), {
      created: t0 + 20,
    });
    const pastDue = stripeEvent('customer.subscription.updated', state('past_due', PLANS.basic.priceId), {
      created: t0 + 10,
    });
    const created = stripeEvent('customer.subscription.created', state('incomplete', PLANS.basic.priceId), {
      created: t0,
    });
    // Newest first: each older state that follows must leave it alone.
    const stages: string[] = [];
    for (const event of [upgraded, pastDue, created]) {
      const [result] = await deliverAndSettle(h, [event]);
      stages.push(result?.stage ?? 'none');
    }
    expect(stages).toEqual(['synced', 'stale_state', 'stale_state']);
    expect(await subscriptionRow(fixture.subscriptionId)).toMatchObject({
      status: 'active',
      plan_id: 'pro-monthly',
    });

    const deleted = stripeEvent('customer.subscription.deleted', state('canceled', PLANS.pro.priceId), {
      created: t0 + 30,
    });
    const lateUpdate = stripeEvent('customer.subscription.updated', state('active', PLANS.pro.priceId), {
      created: t0 + 25,
    });
    const [ended] = await deliverAndSettle(h, [deleted]);
    expect(ended).toMatchObject({ stage: 'synced', subscriptionStatus: 'canceled', notice: 'sent' });
    await deliverAndSettle(h, [
      lateUpdate,
      stripeEvent('customer.subscription.deleted', deleted.data.object),
    ]);
    expect(await subscriptionRow(fixture.subscriptionId)).toMatchObject({ status: 'canceled' });

    const notices = (await h.smtp.settledMail(fixture.account.email, 2)).filter(
      (mail) => mail.subject === 'Your subscription has ended',
    );
    expect(notices).toHaveLength(1);
    expect(notices[0]?.text).toContain('Pro plan');
    // The state changes credits nothing: only the first period's grant is in the ledger.
    expect(await checkedBalance(h, fixture.account.id)).toBe(PLANS.basic.credits);
  });

  it('when payment attempts of an invoice fail, then one dunning email is sent, and none once it is paid', async () => {
    const fixture = await newSubscription(h, 'basic', { startedPeriodsAgo: 1 });
    await deliverAndSettle(h, fixture.startEvents());
    await h.smtp.waitForMail(fixture.account.email);

    const failing = fixture.renewal(1, { status: 'open', attemptCount: 1 });
    const retried = { ...failing, attempt_count: 2 };
    const results = await deliverAndSettle(h, [
      stripeEvent('invoice.payment_failed', failing),
      stripeEvent('invoice.payment_failed', retried),
    ]);
    expect(results.map((result) => result.stage).sort()).toEqual(['dunning_sent', 'dunning_sent']);
    const dunning = () =>
      h.smtp.to(fixture.account.email).filter((mail) => /did not go through/.test(mail.subject));
    expect(dunning()).toHaveLength(1);
    expect(dunning()[0]?.text).toContain('$19.00');
    expect(dunning()[0]?.text).toContain('Basic plan');

    const paid = fixture.renewal(1, { id: failing.id });
    await deliverAndSettle(h, [stripeEvent('invoice.paid', paid)]);
    const [late] = await deliverAndSettle(h, [
      stripeEvent('invoice.payment_failed', { ...failing, attempt_count: 3 }),
    ]);
    expect(late).toMatchObject({ stage: 'already_paid' });
    expect(dunning()).toHaveLength(1);
    await runMaintenance(h);
    expect(await checkedBalance(h, fixture.account.id)).toBe(1000);
    expect(await outboxRowsFor(h.sql, fixture.account.id)).toHaveLength(3);
  });

  it('when a subscription checkout names an account that does not exist, then nothing is linked and its invoice is not granted', async () => {
    const fixture = await newSubscription(h, 'basic');
    const stranger = {
      ...fixture.session,
      metadata: { accountId: 'acct_nobody' },
      client_reference_id: 'acct_nobody',
    };
    const [linked] = await deliverAndSettle(h, [stripeEvent('checkout.session.completed', stranger)]);
    expect(linked).toMatchObject({ stage: 'account_unknown' });
    expect(await subscriptionRow(fixture.subscriptionId)).toBeNull();
    const handle = await h.temporal.workflow.start('invoiceWorkflow', {
      workflowId: `test-unlinked-${fixture.firstInvoice.id}`,
      taskQueue: h.config.temporal.taskQueue,
      args: [
        {
          eventId: 'evt_test',
          eventType: 'invoice.paid',
          action: 'grant',
          invoice: summarizeInvoice(fixture.firstInvoice),
          timeouts: { link: '2 seconds', review: '1 second', receipt: '1 minute' },
        },
      ],
    });
    expect(await handle.result()).toMatchObject({
      stage: 'review_expired',
      reasonCode: 'subscription_unlinked',
    });
    const [purchase] = await h.sql<{ status: string; kind: string }[]>`
      SELECT status, kind FROM purchases WHERE id = ${fixture.firstInvoice.id}`;
    expect(purchase).toEqual({ status: 'review_expired', kind: 'invoice' });
  });

  it('when an invoice bills a price no plan has, then it is held until an operator approves with credits', async () => {
    const { fixture, unknown, handle } = await heldInvoice(h);
    expect(await handle.query(invoiceStatusQuery)).toMatchObject({
      reasonCode: 'plan_unknown',
      accountId: fixture.account.id,
    });
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops@example.com', credits: 250 });
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 250 });
    expect(await ledgerOf(h, fixture.account.id)).toEqual([
      expect.objectContaining({ key: unknown.id, delta: 250, reason: 'approved by ops@example.com' }),
    ]);
  });
});
