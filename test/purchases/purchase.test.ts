import { randomUUID } from 'node:crypto';
import { createAccount } from '../../credits/accounts';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { checkedBalance, grantDirectly } from '../support/billing';
import { PurchaseStatus } from '../../workflows/shared/search-attributes';
import { balanceOf, ledgerRowsFor, outboxRowsFor, purchaseRow } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { waitUntil } from '../support/wait';

describe('purchase path', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when a paid checkout for a pack arrives, then the pack credits are granted once and a receipt is emailed', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({
      accountId: account.id,
      packId: 'growth',
      amountTotal: 4500,
      email: 'ignored@example.com',
    });
    const event = stripeEvent('checkout.session.completed', session);

    const response = await h.deliver(event);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ received: true, workflowId: event.id, status: 'started' });

    const [mail] = await h.smtp.waitForMail(account.email);
    expect(mail?.subject).toBe('Receipt: 550 credits added to your account');
    expect(mail?.text).toContain('$45.00');
    expect(mail?.text).toContain('New balance: 550 credits');

    expect(await balanceOf(h.sql, account.id)).toBe(550);
    const rows = await ledgerRowsFor(h.sql, session.id as string);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      account_id: account.id,
      delta: '550',
      balance_after: '550',
      kind: 'purchase',
    });
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({
      status: 'completed',
      credits: '550',
    });
    expect(await outboxRowsFor(h.sql, account.id)).toEqual([
      expect.objectContaining({ status: 'sent', attempts: 1, last_error: null }),
    ]);

    const result = await h.temporal.workflow.getHandle(event.id).result();
    expect(result).toMatchObject({ stage: 'completed', credits: 550, receipt: 'sent' });

    const purchase = await h.api('GET', `/v1/purchases/${session.id as string}`);
    expect(purchase.status).toBe(200);
    expect(purchase.body).toMatchObject({
      status: 'completed',
      credits: 550,
      accountId: account.id,
      workflowId: event.id,
    });
    const balance = await h.api('GET', `/v1/accounts/${account.id}`);
    expect(balance.body).toEqual({
      id: account.id,
      email: account.email,
      balance: 550,
      available: 550,
      held: 0,
      debt: 0,
      credits: { paid: 550, promotional: 0 },
    });
  });

  it('when the account is only in client_reference_id, then it is still credited', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({
      accountId: account.id,
      packId: 'starter',
      accountInClientReferenceOnly: true,
    });
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    await waitUntil(async () => (await balanceOf(h.sql, account.id)) === 100, { what: 'balance 100' });
  });

  it('when a delayed payment completes unpaid and later succeeds, then credits come only with the success', async () => {
    const account = await h.newAccount();
    const unpaid = checkoutSession({ accountId: account.id, packId: 'starter', paymentStatus: 'unpaid' });
    const completed = stripeEvent('checkout.session.completed', unpaid);
    expect((await h.deliver(completed)).status).toBe(200);
    const first = await h.temporal.workflow.getHandle(completed.id).result();
    expect(first).toMatchObject({ stage: 'awaiting_payment' });
    expect(await purchaseRow(h.sql, unpaid.id as string)).toMatchObject({ status: 'awaiting_payment' });
    expect(await balanceOf(h.sql, account.id)).toBe(0);

    const succeeded = stripeEvent('checkout.session.async_payment_succeeded', {
      ...unpaid,
      payment_status: 'paid',
    });
    expect((await h.deliver(succeeded)).status).toBe(200);
    const second = await h.temporal.workflow.getHandle(succeeded.id).result();
    expect(second).toMatchObject({ stage: 'completed', credits: 100 });
    expect(await balanceOf(h.sql, account.id)).toBe(100);
    expect(await purchaseRow(h.sql, unpaid.id as string)).toMatchObject({ status: 'completed' });

    // A late redelivery of the unpaid event under a new ID cannot move the purchase back.
    const late = stripeEvent('checkout.session.completed', unpaid);
    await h.deliver(late);
    expect(await h.temporal.workflow.getHandle(late.id).result()).toMatchObject({ stage: 'already_granted' });
    expect(await purchaseRow(h.sql, unpaid.id as string)).toMatchObject({ status: 'completed' });
  });

  it('when the ledger refuses a paid purchase (the balance would pass 2^53 − 1), then it is held for review with that reason, findable at GET /v1/purchases/:id, on the desk and in the Temporal UI', async () => {
    const account = await h.newAccount();
    const nearMax = Number.MAX_SAFE_INTEGER - 50;
    await grantDirectly(h.sql, account.id, { key: 'near-max', amount: nearMax });
    const session = checkoutSession({ accountId: account.id, packId: 'starter', amountTotal: 900 });
    const sessionId = session.id as string;
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    // Until the run waits held, or ended (which it must not: money taken is never dropped).
    const settled = await waitUntil(
      async () => {
        const description = await handle.describe();
        const stage = description.typedSearchAttributes.get(PurchaseStatus);
        return description.status.name !== 'RUNNING' || stage === 'held_for_review' ? description : null;
      },
      { what: 'the purchase held or ended' },
    );
    expect({
      status: settled.status.name,
      stage: settled.typedSearchAttributes.get(PurchaseStatus),
    }).toEqual({ status: 'RUNNING', stage: 'held_for_review' });

    const purchase = await h.api('GET', `/v1/purchases/${sessionId}`);
    expect(purchase).toMatchObject({
      status: 200,
      body: {
        status: 'held_for_review',
        reasonCode: 'balance_out_of_range',
        accountId: account.id,
        credits: 100,
        workflowId: event.id,
        workflow: { stage: 'held_for_review', reasonCode: 'balance_out_of_range' },
      },
    });
    const desk = await waitUntil(
      async () => {
        const page = await h.api('GET', `/v1/reviews?accountId=${account.id}`);
        const reviews = page.body.reviews as Record<string, unknown>[] | undefined;
        return reviews?.length === 1 ? reviews : null;
      },
      { what: 'the purchase on the desk', timeoutMs: 20_000 },
    );
    expect(desk).toEqual([
      expect.objectContaining({ workflowId: event.id, reasonCode: 'balance_out_of_range', credits: 100 }),
    ]);
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(0);
    expect(await checkedBalance(h, account.id)).toBe(nearMax);
    await h.api('POST', `/v1/reviews/${event.id}`, { decision: 'reject', note: 'test over' });
  });

  it('when an event type is not handled, then it is acknowledged as ignored and nothing starts', async () => {
    const event = stripeEvent('customer.created', { id: 'cus_123', object: 'customer', livemode: false });
    const response = await h.deliver(event);
    expect(response).toEqual({ status: 200, body: { received: true, workflowId: null, status: 'ignored' } });
    await expect(h.temporal.workflow.getHandle(event.id).describe()).rejects.toThrow();
  });

  describe('text beyond ASCII, at its longest', () => {
    it('when the account ID is 128 non-ASCII characters and the pack name mixes emoji, accents and right-to-left text, then the purchase completes with one grant and a receipt that carries both unchanged', async () => {
      // Characters in the Basic Multilingual Plane only, so JavaScript's and PostgreSQL's lengths agree.
      const stem = `acct_ünïcødé_жз_中文_${randomUUID()}_`;
      const accountId = (stem + 'ß'.repeat(128)).slice(0, 128);
      expect(accountId).toHaveLength(128);
      const email = `${'x'.repeat(50)}+receipt.${randomUUID().slice(0, 8)}@customers.test`;
      await createAccount(h.sql, { id: accountId, email });
      const packId = `odd-${randomUUID().slice(0, 8)}`;
      const packName = 'Crédits “Größe” 🚀✨ — رصيد إضافي — 👩🏽‍💻 naïve';
      await h.sql`INSERT INTO credit_packs (id, name, credits, price_cents, currency) VALUES (${packId}, ${packName}, 77, 700, 'usd')`;
      const session = checkoutSession({
        accountId,
        packId,
        amountTotal: 700,
        email: 'jénny.rösen@example.com',
        metadata: { note: '💥'.repeat(250) },
      });
      const sessionId = session.id as string;
      const event = stripeEvent('checkout.session.completed', session);
      expect((await h.deliver(event)).status).toBe(200);
      expect(await h.temporal.workflow.getHandle(event.id).result()).toMatchObject({
        stage: 'completed',
        receipt: 'sent',
        credits: 77,
      });
      expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
      expect(await checkedBalance(h, accountId)).toBe(77);
      const received = await h.smtp.settledMail(email);
      expect(received).toHaveLength(1);
      expect(received[0]?.text).toContain(packName);
      expect(received[0]?.text).toContain(accountId);
      expect(received[0]?.text).toContain('$7.00');
      expect(await outboxRowsFor(h.sql, accountId)).toEqual([expect.objectContaining({ status: 'sent' })]);
    }, 120_000);
  });
});
