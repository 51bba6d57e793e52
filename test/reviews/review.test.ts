import type { PurchaseWorkflowStatus } from '../../workflows/purchases/contract';
import { statusQuery } from '../../workflows/purchases/contract';
import { reviewSignal } from '../../workflows/reviews/contract';
import { checkoutSession, stripeEvent, type CheckoutSessionOptions } from '../../stripe/fixtures/index';
import { balanceOf, ledgerRowsFor, purchaseRow } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { sleep, waitUntil } from '../support/wait';

describe('purchases that fail validation are held for review', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function deliverHeld(options: Omit<CheckoutSessionOptions, 'accountId'> & { accountId?: string }) {
    const account = await h.newAccount();
    const accountId = options.accountId ?? account.id;
    const session = checkoutSession({ packId: 'starter', ...options, accountId });
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    const status = await waitUntil(
      async () => {
        const current = await handle.query(statusQuery);
        return current.stage === 'held_for_review' ? current : null;
      },
      { what: 'held_for_review' },
    );
    return { account, accountId, session, event, handle, status };
  }

  async function findHeldBySearchAttributes(accountId: string): Promise<string[]> {
    return waitUntil(
      async () => {
        const ids: string[] = [];
        const query = `PurchaseStatus = 'held_for_review' AND AccountId = '${accountId}' AND StripeEventType = 'checkout.session.completed'`;
        for await (const execution of h.temporal.workflow.list({ query })) ids.push(execution.workflowId);
        return ids.length > 0 ? ids : null;
      },
      { what: `held purchase of ${accountId} in visibility`, timeoutMs: 20_000 },
    );
  }

  const cases: Array<[string, Omit<CheckoutSessionOptions, 'accountId'>, string]> = [
    ['the amount paid is below the pack price', { amountTotal: 100 }, 'amount_mismatch'],
    ['the currency differs from the pack currency', { currency: 'eur' }, 'currency_mismatch'],
    ['the pack is not in the catalog', { packId: 'free-money' }, 'pack_unknown'],
    ['metadata.credits was tampered with', { metadata: { credits: '1000000' } }, 'credits_mismatch'],
    ['the event livemode differs from the configured mode', { livemode: true }, 'livemode_mismatch'],
  ];

  it.each(cases)(
    'when %s, then nothing is granted and the purchase is held and findable',
    async (_name, options, code) => {
      const { account, session, handle, status } = await deliverHeld(options);
      expect(status).toMatchObject<Partial<PurchaseWorkflowStatus>>({
        reasonCode: code as never,
        ledgerEntryId: null,
      });
      expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({
        status: 'held_for_review',
        reason_code: code,
      });
      expect(await balanceOf(h.sql, account.id)).toBe(0);
      expect(await findHeldBySearchAttributes(account.id)).toEqual([handle.workflowId]);
      const purchase = await h.api('GET', `/v1/purchases/${session.id as string}`);
      expect(purchase.body).toMatchObject({
        status: 'held_for_review',
        reasonCode: code,
        workflowId: handle.workflowId,
        workflow: { stage: 'held_for_review', reasonCode: code },
      });
      await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'test' });
      await handle.result();
    },
  );

  it('when the account does not exist, then nothing is granted and the purchase is held', async () => {
    const { session, status } = await deliverHeld({ accountId: 'acct_nobody_has_this' });
    expect(status.reasonCode).toBe('account_unknown');
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'held_for_review' });
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(0);
  });

  it('when an operator approves a held purchase (twice), then the pack credits are granted exactly once', async () => {
    const { account, session, handle } = await deliverHeld({ amountTotal: 850 });
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops@example.com', note: 'coupon' });
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops@example.com' });
    const result = await handle.result();
    expect(result).toMatchObject({ stage: 'completed', credits: 100, receipt: 'sent' });
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(1);
    expect(await balanceOf(h.sql, account.id)).toBe(100);
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'completed' });
    await h.smtp.waitForMail(account.email);
  });

  it('when an operator approves a held purchase of an unknown pack, then the credits they name are granted', async () => {
    const { account, handle, status } = await deliverHeld({ packId: 'legacy-pack' });
    expect(status.reasonCode).toBe('pack_unknown');
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops' });
    await sleep(300);
    // Without a number of credits the approval cannot grant: still held, and it says why.
    const waiting = await handle.query(statusQuery);
    expect(waiting.stage).toBe('held_for_review');
    expect(waiting.reason).toMatch(/approval needs/);
    await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops', credits: 75 });
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 75 });
    expect(await balanceOf(h.sql, account.id)).toBe(75);
  });

  it('when an operator rejects a held purchase, then nothing is ever granted', async () => {
    const { account, session, handle } = await deliverHeld({ currency: 'gbp' });
    await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops', note: 'fraud' });
    expect(await handle.result()).toMatchObject({ stage: 'rejected', ledgerEntryId: null });
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'rejected' });
    expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(0);
    expect(await balanceOf(h.sql, account.id)).toBe(0);
  });

  describe('an approval that cannot grant', () => {
    it('when an approval names an account that does not exist, then the grant fails at once and the purchase goes back to the reviewer', async () => {
      const session = checkoutSession({ accountId: `acct_missing_${Date.now()}`, packId: 'starter' });
      const event = stripeEvent('checkout.session.completed', session);
      expect((await h.deliver(event)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(event.id);
      await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
        what: 'the purchase held',
      });
      await handle.signal(reviewSignal, { decision: 'approve', reviewer: 'ops@example.com', credits: 100 });
      const status = await waitUntil(
        async () => {
          const current = await handle.query(statusQuery);
          return current.review !== null && current.stage === 'held_for_review' ? current : null;
        },
        { what: 'the approval sent back', timeoutMs: 20_000 },
      );
      // The reviewer is told why the approval did not grant.
      expect(status).toMatchObject({
        ledgerEntryId: null,
        reason: expect.stringMatching(/approved, but account .* does not exist/),
      });
      expect(await ledgerRowsFor(h.sql, session.id as string)).toHaveLength(0);
      await handle.signal(reviewSignal, { decision: 'reject', reviewer: 'ops@example.com' });
      await expect(handle.result()).resolves.toMatchObject({ stage: 'rejected' });
    });
  });
});

describe('the review deadline', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ configOverrides: { PURCHASE_REVIEW_TIMEOUT: '2s' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when nobody decides before the deadline, then the purchase closes as review_expired with nothing granted', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter', amountTotal: 1 });
    const event = stripeEvent('checkout.session.completed', session);
    await h.deliver(event);
    const result = await h.temporal.workflow.getHandle(event.id).result();
    expect(result).toMatchObject({ stage: 'review_expired', ledgerEntryId: null });
    expect(await purchaseRow(h.sql, session.id as string)).toMatchObject({ status: 'review_expired' });
    expect(await balanceOf(h.sql, account.id)).toBe(0);
  });
});
