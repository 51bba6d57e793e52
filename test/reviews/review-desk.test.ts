import { createHash } from 'node:crypto';
import { saveCheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import { REVIEW_CURSOR_KEY_PURPOSE, reviewCursors } from '../../temporal/review-cursors';
import { statusQuery } from '../../workflows/purchases/contract';
import { invoiceStatusQuery } from '../../workflows/subscriptions/contract';
import { checkoutSession, stripeEvent, type CheckoutSessionOptions } from '../../stripe/fixtures/index';
import {
  checkedBalance,
  deliverAndSettle,
  grantDirectly,
  heldInvoice,
  newSubscription,
  PACKS,
  PLANS,
} from '../support/billing';
import { balanceOf, ledgerRowsFor, purchaseRow } from '../support/db';
import { ADMIN_KEY_NAME, API_KEY, startHarness, type Harness } from '../support/harness';
import { sleep, waitUntil } from '../support/wait';

interface AuditEntry {
  id: number;
  action: string;
  actor: string;
  reason: string | null;
  before: Record<string, unknown>;
  after: { credits: number | null } & Record<string, unknown>;
}

/** The transaction that wrote a row (PostgreSQL's xmin): two rows of one commit share it. */
async function writtenBy(h: Harness, table: 'audit_log' | 'credit_ledger' | 'purchases', where: string) {
  const column = table === 'audit_log' ? 'id' : table === 'credit_ledger' ? 'business_key' : 'id';
  const rows = await h.sql<{ tx: string }[]>`
    SELECT xmin::text AS tx FROM ${h.sql(table)} WHERE ${h.sql(column)} = ${where}`;
  return rows.map((row) => row.tx);
}

describe('the review desk', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A purchase that fails validation, delivered and waiting in held_for_review. */
  async function heldPurchase(options: Omit<CheckoutSessionOptions, 'accountId'> = {}, accountId?: string) {
    const account = accountId ? { id: accountId } : await h.newAccount();
    const session = checkoutSession({ packId: 'starter', ...options, accountId: account.id });
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
      what: 'held_for_review',
    });
    return { accountId: account.id, session, sessionId: session.id as string, event, handle };
  }

  /** What the desk lists for an account, once visibility shows `count` of them. */
  async function desk(accountId: string, count = 1): Promise<{ reviews: Record<string, unknown>[] }> {
    return waitUntil(
      async () => {
        const page = await h.api('GET', `/v1/reviews?accountId=${accountId}&limit=100`);
        expect(page.status).toBe(200);
        const body = page.body as { reviews: Record<string, unknown>[] };
        return body.reviews.length === count ? body : null;
      },
      { what: `${count} held for ${accountId} on the desk`, timeoutMs: 20_000 },
    );
  }

  const auditOf = async (workflowId: string) =>
    (await h.api('GET', `/v1/audit?subject=workflow:${workflowId}`)).body.entries as AuditEntry[];

  const decide = (workflowId: string, body: Record<string, unknown>) =>
    h.api('POST', `/v1/reviews/${workflowId}`, body);

  it('when a purchase is held, then GET /v1/reviews lists it with its reason and amount, as the Temporal UI query finds it', async () => {
    const { accountId, sessionId, event, handle } = await heldPurchase({ amountTotal: 850 });
    const { reviews } = await desk(accountId);
    expect(reviews).toEqual([
      {
        workflowId: event.id,
        runId: expect.any(String),
        kind: 'purchase',
        eventType: 'checkout.session.completed',
        purchaseId: sessionId,
        purchaseStatus: 'held_for_review',
        accountId,
        reasonCode: 'amount_mismatch',
        reason: `the amount paid differs from the pack price (paid 850, price ${PACKS.starter.amount})`,
        amountCents: 850,
        currency: 'usd',
        credits: PACKS.starter.credits,
        heldSince: expect.any(String),
        startedAt: expect.any(String),
      },
    ]);
    // The query an operator types in the Temporal UI finds the same run.
    const found: string[] = [];
    const query = `PurchaseStatus = 'held_for_review' AND AccountId = '${accountId}'`;
    for await (const execution of h.temporal.workflow.list({ query })) found.push(execution.workflowId);
    expect(found).toEqual([event.id]);
    await decide(event.id, { decision: 'reject', note: 'test over' });
    await handle.result();
  });

  it('when an admin approves a held purchase, then its credits are granted once, it leaves the desk, and the audit log names the reviewer key', async () => {
    const { accountId, sessionId, event, handle } = await heldPurchase({ amountTotal: 850 });
    await desk(accountId);
    const approved = await decide(event.id, { decision: 'approve', note: 'coupon applied' });
    expect(approved.status).toBe(200);
    // The run's own answer: granted, the receipt next (sent by its retried activity).
    expect(approved.body).toEqual({
      workflowId: event.id,
      decision: 'approve',
      reviewer: ADMIN_KEY_NAME,
      applied: true,
      stage: 'sending_receipt',
      credits: PACKS.starter.credits,
      ledgerEntryId: Number((await ledgerRowsFor(h.sql, sessionId))[0]?.id),
      auditId: expect.any(Number),
      reasonCode: null,
      reason: null,
    });
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: PACKS.starter.credits });
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    expect(await balanceOf(h.sql, accountId)).toBe(PACKS.starter.credits);
    expect((await handle.query(statusQuery)).review).toEqual({
      decision: 'approve',
      reviewer: ADMIN_KEY_NAME,
      note: 'coupon applied',
    });
    expect(await auditOf(event.id)).toEqual([
      {
        id: approved.body.auditId,
        at: expect.any(String),
        actor: ADMIN_KEY_NAME,
        action: 'review.approved',
        subject: `workflow:${event.id}`,
        before: expect.objectContaining({
          stage: 'held_for_review',
          reasonCode: 'amount_mismatch',
          amountCents: 850,
          purchaseId: sessionId,
          accountId,
        }),
        after: expect.objectContaining({
          decision: 'approve',
          credits: null,
          applied: true,
          stage: 'sending_receipt',
          granted: PACKS.starter.credits,
          ledgerEntryId: approved.body.ledgerEntryId,
        }),
        reason: 'coupon applied',
      },
    ]);
    await desk(accountId, 0);
  });

  it('when an admin rejects a held purchase, then nothing is granted and the rejection is audited', async () => {
    const { accountId, sessionId, event, handle } = await heldPurchase({ currency: 'gbp' });
    const rejected = await decide(event.id, { decision: 'reject', note: 'card testing' });
    expect(rejected).toMatchObject({ status: 200, body: { applied: true, stage: 'rejected' } });
    expect(await handle.result()).toMatchObject({ stage: 'rejected', ledgerEntryId: null });
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(0);
    expect(await balanceOf(h.sql, accountId)).toBe(0);
    expect(await auditOf(event.id)).toEqual([
      expect.objectContaining({ actor: ADMIN_KEY_NAME, action: 'review.rejected', reason: 'card testing' }),
    ]);
  });

  it('when two approvals arrive at once, then the credits are granted once, the second answers 409, and one decision is audited', async () => {
    const { accountId, sessionId, event, handle } = await heldPurchase({ amountTotal: 850 });
    const answers = await Promise.all([
      decide(event.id, { decision: 'approve', note: 'first' }),
      decide(event.id, { decision: 'approve', note: 'second' }),
    ]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 409]);
    // Refused by the run's validator: while the first is applied, or once it has been.
    expect(answers.find((answer) => answer.status === 409)?.body.error.code).toMatch(
      /^(review_in_progress|not_held_for_review)$/,
    );
    await handle.result();
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
    expect(await balanceOf(h.sql, accountId)).toBe(PACKS.starter.credits);
    expect(await auditOf(event.id)).toHaveLength(1);
  });

  it('when the pack is unknown, then an approval without credits is refused (422, still held, nothing audited) and one with credits grants them', async () => {
    const { accountId, event, handle } = await heldPurchase({ packId: 'legacy-pack' });
    expect((await desk(accountId)).reviews[0]).toMatchObject({ reasonCode: 'pack_unknown', credits: null });
    const without = await decide(event.id, { decision: 'approve', note: 'old price list' });
    expect(without).toMatchObject({ status: 422, body: { error: { code: 'review_credits_required' } } });
    expect((await handle.query(statusQuery)).stage).toBe('held_for_review');
    expect(await auditOf(event.id)).toEqual([]);
    const withCredits = await decide(event.id, { decision: 'approve', credits: 75, note: 'old price list' });
    expect(withCredits).toMatchObject({ status: 200, body: { applied: true, credits: 75 } });
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 75 });
    expect(await balanceOf(h.sql, accountId)).toBe(75);
    expect((await auditOf(event.id)).map((entry) => entry.after.credits)).toEqual([75]);
  });

  it('when a subscription invoice is held, then it is on the desk and an approval with credits grants them', async () => {
    const { fixture, unknown, event, handle } = await heldInvoice(h);
    expect((await desk(fixture.account.id)).reviews).toEqual([
      expect.objectContaining({
        workflowId: event.id,
        kind: 'invoice',
        eventType: 'invoice.paid',
        purchaseId: unknown.id,
        reasonCode: 'plan_unknown',
        amountCents: PLANS.basic.amount,
      }),
    ]);
    const approved = await decide(event.id, {
      decision: 'approve',
      credits: 250,
      note: 'grandfathered plan',
    });
    expect(approved.status).toBe(200);
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: 250 });
    expect(await ledgerRowsFor(h.sql, unknown.id)).toEqual([expect.objectContaining({ delta: '250' })]);
  });

  it('when the desk is paged, then each cursor leads to the next held purchase until none is left', async () => {
    const account = await h.newAccount();
    const held = [
      await heldPurchase({ amountTotal: 1 }, account.id),
      await heldPurchase({ amountTotal: 2 }, account.id),
      await heldPurchase({ amountTotal: 3 }, account.id),
    ];
    await desk(account.id, 3);
    const seen: string[] = [];
    const cursors: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page += 1) {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const answer = await h.api('GET', `/v1/reviews?accountId=${account.id}&limit=2${query}`);
      expect(answer.status).toBe(200);
      const body = answer.body as { reviews: { workflowId: string }[]; nextCursor: string | null };
      seen.push(...body.reviews.map((item) => item.workflowId));
      cursor = body.nextCursor;
      if (cursor === null) break;
      cursors.push(cursor);
    }
    expect(seen.sort()).toEqual(held.map((item) => item.event.id).sort());
    expect(cursors.length).toBeGreaterThanOrEqual(1);
    // A cursor this API never returned, or one returned for another filter, is refused.
    expect((await h.api('GET', '/v1/reviews?cursor=bm90LWEtdG9rZW4')).status).toBe(400);
    expect((await h.api('GET', `/v1/reviews?cursor=${cursors[0]}`)).status).toBe(400);
    for (const item of held) await decide(item.event.id, { decision: 'reject', note: 'test over' });
  });

  it('when a signed event was rejected for good, then the desk shows it with the held purchases', async () => {
    const bad = stripeEvent('checkout.session.completed', {
      ...checkoutSession({ packId: 'starter' }),
      amount_total: 10 ** 13,
    });
    expect((await h.deliver(bad)).body).toMatchObject({ status: 'rejected' });
    const { rejectedEvents } = (await h.api('GET', '/v1/reviews')).body as {
      rejectedEvents: { total: number; newest: { eventId: string }[] };
    };
    expect(rejectedEvents.total).toBeGreaterThanOrEqual(1);
    const mine = rejectedEvents.newest.find((event) => event.eventId === bad.id);
    // Other test files reject events too: ours is shown unless five newer ones came since.
    if (!mine) expect(rejectedEvents.newest).toHaveLength(5);
    else
      expect(mine).toMatchObject({ eventType: 'checkout.session.completed', reasonCode: 'invalid_object' });
  });

  it('when the workflow is unknown or not held, then 404 or 409 and nothing is sent or audited', async () => {
    const unknown = await decide('evt_nobodyhasthisone', { decision: 'approve', note: 'x' });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'review_not_found' } } });

    const account = await h.newAccount();
    const session = checkoutSession({
      accountId: account.id,
      packId: 'starter',
      amountTotal: PACKS.starter.amount,
    });
    const paid = stripeEvent('checkout.session.completed', session);
    expect(await deliverAndSettle(h, [paid])).toEqual([expect.objectContaining({ stage: 'completed' })]);
    const workflowId = paid.id;
    const late = await decide(workflowId, { decision: 'reject', note: 'too late' });
    expect(late).toMatchObject({
      status: 409,
      body: { error: { code: 'not_held_for_review', details: { stage: 'completed' } } },
    });
    expect(await auditOf(workflowId)).toEqual([]);
    expect(await balanceOf(h.sql, account.id)).toBe(PACKS.starter.credits);
  });

  it.each([
    ['credits with a rejection', { decision: 'reject', credits: 5, note: 'x' }],
    ['no note', { decision: 'approve' }],
    ['another decision', { decision: 'maybe', note: 'x' }],
    ['zero credits', { decision: 'approve', credits: 0, note: 'x' }],
  ])('when the decision has %s, then 400 and the purchase stays held', async (_name, body) => {
    const { event, handle } = await heldPurchase({ amountTotal: 850 });
    expect(await decide(event.id, body)).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_request' } },
    });
    expect((await handle.query(statusQuery)).stage).toBe('held_for_review');
    expect(await auditOf(event.id)).toEqual([]);
    await decide(event.id, { decision: 'reject', note: 'test over' });
  });

  it('when a write key asks for the desk or decides, then 403 and the purchase stays held', async () => {
    const { event, handle } = await heldPurchase({ amountTotal: 850 });
    expect((await h.api('GET', '/v1/reviews', undefined, API_KEY)).status).toBe(403);
    const refused = await h.api(
      'POST',
      `/v1/reviews/${event.id}`,
      { decision: 'approve', note: 'x' },
      API_KEY,
    );
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'insufficient_role' } } });
    expect((await handle.query(statusQuery)).stage).toBe('held_for_review');
    await decide(event.id, { decision: 'reject', note: 'test over' });
  });

  describe('what a decision does, in one step with its audit row', () => {
    it('when a held purchase is approved, then its grant and the audit row commit in one transaction', async () => {
      const { sessionId, event, handle } = await heldPurchase({ amountTotal: 850 });
      const approved = await decide(event.id, { decision: 'approve', note: 'coupon applied' });
      expect(approved.status).toBe(200);
      const [ledgerTx] = await writtenBy(h, 'credit_ledger', sessionId);
      expect(ledgerTx).toBeDefined();
      expect(await writtenBy(h, 'audit_log', String(approved.body.auditId))).toEqual([ledgerTx]);
      await handle.result();
    });

    it('when a held purchase is rejected, then it is closed and audited in one transaction', async () => {
      const { sessionId, event, handle } = await heldPurchase({ currency: 'gbp' });
      const rejected = await decide(event.id, { decision: 'reject', note: 'card testing' });
      expect(rejected).toMatchObject({ status: 200, body: { applied: true, stage: 'rejected' } });
      const [purchaseTx] = await writtenBy(h, 'purchases', sessionId);
      expect(await purchaseRow(h.sql, sessionId)).toMatchObject({ status: 'rejected' });
      expect(await writtenBy(h, 'audit_log', String(rejected.body.auditId))).toEqual([purchaseTx]);
      await handle.result();
    });
  });

  describe('whose money it is', () => {
    it.each([
      ['with the checkout snapshot naming the buyer', true],
      ['without a snapshot', false],
    ])(
      'when the metadata names another account than the buyer (%s), then the purchase is held, listed under the buyer, and an approval credits the buyer',
      async (_name, withSnapshot) => {
        const buyer = await h.newAccount();
        const other = await h.newAccount();
        const session = checkoutSession({
          accountId: buyer.id,
          packId: 'starter',
          metadata: { accountId: other.id },
        });
        const sessionId = session.id as string;
        if (withSnapshot) {
          await saveCheckoutSnapshot(h.sql, {
            id: sessionId,
            accountId: buyer.id,
            packId: 'starter',
            credits: PACKS.starter.credits,
            amountCents: PACKS.starter.amount,
            currency: 'usd',
            url: null,
            idempotencyKey: null,
            requestFingerprint: `test-${sessionId}`,
          });
        }
        const event = stripeEvent('checkout.session.completed', session);
        expect((await h.deliver(event)).status).toBe(200);
        const handle = h.temporal.workflow.getHandle(event.id);
        const status = await waitUntil(
          async () => {
            const current = await handle.query(statusQuery);
            return current.stage === 'validating' ? null : current;
          },
          { what: 'the purchase checked' },
        );
        expect(status).toMatchObject({
          stage: 'held_for_review',
          reasonCode: 'account_mismatch',
          accountId: buyer.id,
        });
        expect((await desk(buyer.id)).reviews).toEqual([
          expect.objectContaining({
            workflowId: event.id,
            accountId: buyer.id,
            credits: PACKS.starter.credits,
          }),
        ]);
        expect((await h.api('GET', `/v1/reviews?accountId=${other.id}`)).body.reviews).toEqual([]);

        const approved = await decide(event.id, { decision: 'approve', note: 'the buyer paid' });
        expect(approved.status).toBe(200);
        expect(await handle.result()).toMatchObject({ stage: 'completed', credits: PACKS.starter.credits });
        expect(await checkedBalance(h, buyer.id)).toBe(PACKS.starter.credits);
        expect(await checkedBalance(h, other.id)).toBe(0);
        expect(await ledgerRowsFor(h.sql, sessionId)).toEqual([
          expect.objectContaining({ account_id: buyer.id }),
        ]);
      },
    );

    it('when only metadata names an account (no client reference, no snapshot), then nobody is the buyer: it is held account_missing, an approval is refused 409 review_buyer_unknown, and a rejection closes it', async () => {
      const claimed = await h.newAccount();
      const session = checkoutSession({ packId: 'starter', metadata: { accountId: claimed.id } });
      const event = stripeEvent('checkout.session.completed', session);
      expect((await h.deliver(event)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(event.id);
      await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
        what: 'held_for_review',
      });
      expect(await handle.query(statusQuery)).toMatchObject({
        reasonCode: 'account_missing',
        accountId: null,
      });
      expect(await decide(event.id, { decision: 'approve', note: 'x' })).toMatchObject({
        status: 409,
        body: { error: { code: 'review_buyer_unknown' } },
      });
      expect(await decide(event.id, { decision: 'reject', note: 'nobody paid us' })).toMatchObject({
        status: 200,
        body: { applied: true, stage: 'rejected' },
      });
      expect(await checkedBalance(h, claimed.id)).toBe(0);
    });
  });

  describe('a grant the ledger refuses', () => {
    const NEAR_MAX = Number.MAX_SAFE_INTEGER - 50;

    it('when an approval’s grant would take the balance past 2^53 − 1, then the desk answers 422 review_not_applied, the purchase stays held and listed, and the refused attempt is audited', async () => {
      const account = await h.newAccount();
      await grantDirectly(h.sql, account.id, { key: 'near-max', amount: NEAR_MAX });
      const { sessionId, event, handle } = await heldPurchase({ amountTotal: 850 }, account.id);
      await desk(account.id);

      const approved = await decide(event.id, { decision: 'approve', note: 'coupon applied' });
      expect(approved).toMatchObject({
        status: 422,
        body: {
          error: {
            code: 'review_not_applied',
            details: {
              applied: false,
              stage: 'held_for_review',
              reasonCode: 'balance_out_of_range',
              auditId: expect.any(Number),
            },
          },
        },
      });
      expect((await handle.describe()).status.name).toBe('RUNNING');
      expect((await handle.query(statusQuery)).stage).toBe('held_for_review');
      expect((await desk(account.id)).reviews).toEqual([expect.objectContaining({ workflowId: event.id })]);
      expect(await h.api('GET', `/v1/purchases/${sessionId}`)).toMatchObject({
        status: 200,
        body: { status: 'held_for_review' },
      });
      expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(0);
      expect(await checkedBalance(h, account.id)).toBe(NEAR_MAX);
      expect(await auditOf(event.id)).toEqual([
        expect.objectContaining({
          id: approved.body.error.details.auditId,
          action: 'review.not_applied',
          actor: ADMIN_KEY_NAME,
          reason: 'coupon applied',
          after: expect.objectContaining({ applied: false, reasonCode: 'balance_out_of_range' }),
        }),
      ]);

      // Still decidable: a rejection closes it.
      expect(await decide(event.id, { decision: 'reject', note: 'refund instead' })).toMatchObject({
        status: 200,
        body: { stage: 'rejected' },
      });
      expect(await handle.result()).toMatchObject({ stage: 'rejected' });
    });

    it('when the ledger refuses a paid invoice’s period credits, then the invoice is held for review with that reason, on the desk and at GET /v1/purchases/:id', async () => {
      const fixture = await newSubscription(h, 'basic');
      await grantDirectly(h.sql, fixture.account.id, { key: 'near-max', amount: NEAR_MAX });
      const [link, created, paid] = fixture.startEvents();
      await deliverAndSettle(h, [link!, created!]);
      expect((await h.deliver(paid!)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(paid!.id);
      const settled = await waitUntil(
        async () => {
          const description = await handle.describe();
          if (description.status.name !== 'RUNNING') return { ended: description.status.name };
          const status = await handle.query(invoiceStatusQuery);
          return status.stage === 'held_for_review' ? status : null;
        },
        { what: 'the invoice held or ended' },
      );
      expect(settled).toMatchObject({ stage: 'held_for_review', reasonCode: 'balance_out_of_range' });
      expect(await h.api('GET', `/v1/purchases/${fixture.firstInvoice.id}`)).toMatchObject({
        status: 200,
        body: { status: 'held_for_review', reasonCode: 'balance_out_of_range' },
      });
      expect((await desk(fixture.account.id)).reviews).toEqual([
        expect.objectContaining({
          workflowId: paid!.id,
          kind: 'invoice',
          reasonCode: 'balance_out_of_range',
        }),
      ]);
      expect(await checkedBalance(h, fixture.account.id)).toBe(NEAR_MAX);
      await decide(paid!.id, { decision: 'reject', note: 'test over' });
      await handle.result();
    });
  });

  describe('cursors', () => {
    it('when a cursor is forged (a plain digest of the query and a token Temporal never issued), then 400 invalid_request, not 503', async () => {
      const query = [
        "WorkflowType IN ('purchaseWorkflow', 'invoiceWorkflow')",
        "ExecutionStatus = 'Running'",
        "(PurchaseStatus = 'held_for_review' OR BillingStatus = 'held_for_review')",
      ].join(' AND ');
      const token = Buffer.from('a page token Temporal never issued');
      const check = createHash('sha256').update(query).update(token).digest().subarray(0, 8);
      const forged = Buffer.concat([check, token]).toString('base64url');
      expect(await h.api('GET', `/v1/reviews?cursor=${forged}`)).toMatchObject({
        status: 400,
        body: { error: { code: 'invalid_request' } },
      });
    });

    it('when a cursor carries a valid MAC over a page token Temporal refuses, then 400 invalid_request, not 503', async () => {
      const query = [
        "WorkflowType IN ('purchaseWorkflow', 'invoiceWorkflow')",
        "ExecutionStatus = 'Running'",
        "(PurchaseStatus = 'held_for_review' OR BillingStatus = 'held_for_review')",
      ].join(' AND ');
      // Made with the key every replica derives from the payload key ring, as the API makes them.
      const key = h.config.temporalPayloads.keyRing.derivedKey(REVIEW_CURSOR_KEY_PURPOSE);
      const cursor = reviewCursors(key).cursorOf(Buffer.from('not a token Temporal can read'), query);
      expect(await h.api('GET', `/v1/reviews?cursor=${cursor}`)).toMatchObject({
        status: 400,
        body: { error: { code: 'invalid_request' } },
      });
    });
  });

  describe('notes a reviewer cannot store', () => {
    it('when an approval note holds a NUL character, then it is refused with 400 and the purchase stays held, never granted without an audit entry', async () => {
      const { accountId, event, handle } = await heldPurchase({ amountTotal: 850 });

      const answer = await h.api('POST', `/v1/reviews/${event.id}`, {
        decision: 'approve',
        note: 'coupon\u0000',
      });
      // Give a signal that did get through the time to grant.
      await sleep(3000);
      const audit = await h.api('GET', `/v1/audit?subject=workflow:${event.id}`);
      const outcome = {
        status: answer.status,
        stage: (await handle.query(statusQuery)).stage,
        balance: await checkedBalance(h, accountId),
        audited: (audit.body.entries as unknown[]).length,
      };
      expect(outcome).toEqual({ status: 400, stage: 'held_for_review', balance: 0, audited: 0 });
    });

    it('when a rejection note holds a NUL character, then it is refused with 400 and the workflow is not left retrying its close forever', async () => {
      const { event, handle } = await heldPurchase({ amountTotal: 850 });

      const answer = await h.api('POST', `/v1/reviews/${event.id}`, {
        decision: 'reject',
        note: 'fraud\u0000',
      });
      await sleep(3000);
      const description = await handle.describe();
      const failing = (description.raw.pendingActivities ?? []).filter(
        (activity) => (activity.attempt ?? 0) > 1,
      );
      expect({ status: answer.status, retryingActivities: failing.length }).toEqual({
        status: 400,
        retryingActivities: 0,
      });
      await handle.terminate('test cleanup');
    });
  });
});
