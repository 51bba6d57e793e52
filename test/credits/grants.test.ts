import { randomUUID } from 'node:crypto';
import { closeGrant, drawDown } from '../../credits/grants';
import { holdCredits } from '../../credits/reservations';
import { charge, checkoutSession, dispute, stripeEvent, stripeId } from '../../stripe/fixtures/index';
import {
  checkedBalance,
  deliverAndSettle,
  grantDirectly,
  grantedPurchase,
  grantsOf,
  ledgerOf,
  newSubscription,
  runMaintenance,
} from '../support/billing';
import { ADMIN_KEY_NAME, startHarness, type Harness } from '../support/harness';
import { sleep } from '../support/wait';

/**
 * The grant model: which credits are which. Expiry, refunds and disputes act on the grant they
 * concern; debits draw down in one documented order.
 */
describe('credit grants', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const debit = (accountId: string, amount: number, key: string) =>
    h.api('POST', `/v1/accounts/${accountId}/debits`, { amount, idempotencyKey: key, reason: 'usage' });

  /** Waits until the clock has passed `epochSeconds`, then runs the maintenance sweep. */
  async function expireAfter(epochSeconds: number) {
    const wait = epochSeconds * 1000 - Date.now() + 50;
    if (wait > 0) await sleep(wait);
    await runMaintenance(h);
  }

  /** A refund of the whole first invoice of a subscription fixture. */
  const refundOfFirstInvoice = (fixture: Awaited<ReturnType<typeof newSubscription>>) =>
    stripeEvent(
      'charge.refunded',
      charge({
        paymentIntentId: fixture.firstPaymentIntentId,
        amount: fixture.terms.amount,
        amountRefunded: fixture.terms.amount,
      }),
    );

  describe('expiry of subscription periods (plans without rollover)', () => {
    it('when a refunded period ends, then expiry takes nothing from a pack bought separately', async () => {
      // Its invoice events carry their payments: no Stripe API here to ask which invoice was paid.
      const fixture = await newSubscription(h, 'basic', { firstPeriodEndsIn: 8, includePayments: true });
      await deliverAndSettle(h, fixture.startEvents());
      await deliverAndSettle(h, [refundOfFirstInvoice(fixture)]);
      const pack = checkoutSession({ accountId: fixture.account.id, packId: 'starter' });
      await deliverAndSettle(h, [stripeEvent('checkout.session.completed', pack)]);
      expect(await checkedBalance(h, fixture.account.id)).toBe(100);

      await expireAfter(fixture.periodStart + 30 * 24 * 3600);
      expect(await checkedBalance(h, fixture.account.id)).toBe(100);
      const [period] = await grantsOf(h, fixture.account.id);
      expect(period).toMatchObject({ amount: 1000, remaining: 0, expired: 0, closed: 'expired' });
      expect((await ledgerOf(h, fixture.account.id)).filter((row) => row.kind === 'expiry')).toEqual([]);
    });

    it('when a period is refunded after it expired, then nothing is taken a second time', async () => {
      const fixture = await newSubscription(h, 'basic', { firstPeriodEndsIn: 6, includePayments: true });
      await deliverAndSettle(h, fixture.startEvents());
      const pack = checkoutSession({ accountId: fixture.account.id, packId: 'starter' });
      await deliverAndSettle(h, [stripeEvent('checkout.session.completed', pack)]);
      await expireAfter(fixture.periodStart + 30 * 24 * 3600);
      expect(await checkedBalance(h, fixture.account.id)).toBe(100);

      const [refund] = await deliverAndSettle(h, [refundOfFirstInvoice(fixture)]);
      expect(refund).toMatchObject({ stage: 'no_change' });
      // The 1000-credit grant lost 1000 in all (its expiry), and the pack's 100 are untouched.
      expect(await checkedBalance(h, fixture.account.id)).toBe(100);
      const moved = (await ledgerOf(h, fixture.account.id)).filter((row) => row.delta < 0);
      expect(moved.reduce((sum, row) => sum + row.delta, 0)).toBe(-1000);
    });

    it('when two subscriptions without rollover share an account, then each period expires its own unused credits', async () => {
      // Long enough for both purchases and the debit to settle before the first period ends.
      const first = await newSubscription(h, 'basic', { firstPeriodEndsIn: 10 });
      await deliverAndSettle(h, first.startEvents());
      const second = await newSubscription(h, 'basic', { firstPeriodEndsIn: 12 });
      // The second subscription belongs to the same account as the first.
      const sameAccount = { ...second.session, client_reference_id: first.account.id, metadata: {} };
      await deliverAndSettle(h, [
        stripeEvent('checkout.session.completed', sameAccount),
        ...second.startEvents().slice(1),
      ]);
      expect(await checkedBalance(h, first.account.id)).toBe(2000);
      // Spent from the grant that expires first.
      expect((await debit(first.account.id, 300, 'job-1')).status).toBe(201);

      await expireAfter(second.periodStart + 30 * 24 * 3600);
      expect(await checkedBalance(h, first.account.id)).toBe(0);
      const expiries = (await ledgerOf(h, first.account.id)).filter((row) => row.kind === 'expiry');
      expect(expiries.map((row) => row.delta)).toEqual([-700, -1000]);
    });
  });

  describe('draw-down order', () => {
    it('when credits of several grants are spent, then promotional go first, then the soonest to expire, then the oldest', async () => {
      const account = await h.newAccount();
      const soon = new Date(Date.now() + 3600_000);
      const later = new Date(Date.now() + 7200_000);
      const grant = (key: string, amount: number, category: 'paid' | 'promotional', expiresAt: Date | null) =>
        grantDirectly(h.sql, account.id, { key, amount, category, expiresAt });
      const paidOld = await grant('paid-old', 100, 'paid', null);
      const paidLater = await grant('paid-later', 100, 'paid', later);
      const paidSoon = await grant('paid-soon', 100, 'paid', soon);
      const promo = await grant('promo', 50, 'promotional', null);

      const spend = await debit(account.id, 320, 'job-1');
      expect(spend.status).toBe(201);
      const page = await h.api('GET', `/v1/accounts/${account.id}/ledger?limit=1`);
      expect(page.body.entries[0].allocations).toEqual([
        { grantId: promo.grant.id, amount: 50 },
        { grantId: paidSoon.grant.id, amount: 100 },
        { grantId: paidLater.grant.id, amount: 100 },
        { grantId: paidOld.grant.id, amount: 70 },
      ]);
      const view = await h.api('GET', `/v1/accounts/${account.id}`);
      expect(view.body).toMatchObject({ balance: 30, available: 30, credits: { paid: 30, promotional: 0 } });
    });

    it('when a grant has passed its expiry but the sweep has not run, then nothing is drawn from it', async () => {
      const account = await h.newAccount();
      const { grant } = await grantDirectly(h.sql, account.id, {
        key: 'short',
        amount: 40,
        category: 'promotional',
        expiresAt: new Date(Date.now() + 500),
      });
      await sleep(700);
      expect((await debit(account.id, 1, 'job-1')).status).toBe(402);
      const closed = await closeGrant(h.sql, grant.id, { as: 'expired' });
      expect(closed.entry?.delta).toBe(-40);
      expect(await checkedBalance(h, account.id)).toBe(0);
    });
  });

  describe('expiry happens once', () => {
    it('when many sweeps and direct expiries race for one grant, then exactly one expiry row is written', async () => {
      const account = await h.newAccount();
      const { grant } = await grantDirectly(h.sql, account.id, {
        key: 'race',
        amount: 75,
        category: 'promotional',
        expiresAt: new Date(Date.now() + 300),
      });
      await sleep(400);
      await Promise.all([
        runMaintenance(h),
        runMaintenance(h),
        ...Array.from({ length: 10 }, () => closeGrant(h.sql, grant.id, { as: 'expired' })),
      ]);
      // The worker restarts, and the sweep runs again.
      await h.stopWorker();
      await h.startWorker();
      await runMaintenance(h);
      const expiries = (await ledgerOf(h, account.id)).filter((row) => row.kind === 'expiry');
      expect(expiries).toEqual([expect.objectContaining({ delta: -75, key: `expiry:grant:${grant.id}` })]);
      expect(await checkedBalance(h, account.id)).toBe(0);
    });
  });

  describe('refunds and disputes act on their own grant', () => {
    it('when a purchase is refunded after part of it was spent, then the rest is taken and the spent part becomes debt that the next purchase repays', async () => {
      const purchase = await grantedPurchase(h, 'growth');
      expect((await debit(purchase.account.id, 400, 'job-1')).status).toBe(201);
      await deliverAndSettle(h, [purchase.refunded(purchase.terms.amount)]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(550 - 400 - 550);
      const owing = await h.api('GET', `/v1/accounts/${purchase.account.id}`);
      expect(owing.body).toMatchObject({ balance: -400, debt: 400, available: -400 });
      expect((await debit(purchase.account.id, 1, 'job-2')).status).toBe(402);

      const more = checkoutSession({ accountId: purchase.account.id, packId: 'scale', amountTotal: 9000 });
      await deliverAndSettle(h, [stripeEvent('checkout.session.completed', more)]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(1200 - 400);
      const repaid = await h.api('GET', `/v1/accounts/${purchase.account.id}`);
      expect(repaid.body).toMatchObject({ balance: 800, debt: 0, available: 800 });
    });

    it('when a dispute is won after its debt was repaid, then the repayment goes back to the grant that paid it', async () => {
      const purchase = await grantedPurchase(h, 'growth');
      expect((await debit(purchase.account.id, 500, 'job-1')).status).toBe(201);
      const disputeId = stripeId('dp');
      const disputed = (status: string) =>
        dispute({
          id: disputeId,
          paymentIntentId: purchase.paymentIntentId,
          status,
          amount: purchase.terms.amount,
        });
      await deliverAndSettle(h, [stripeEvent('charge.dispute.created', disputed('needs_response'))]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(-500);
      const more = checkoutSession({ accountId: purchase.account.id, packId: 'scale', amountTotal: 9000 });
      await deliverAndSettle(h, [stripeEvent('checkout.session.completed', more)]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(700);

      await deliverAndSettle(h, [stripeEvent('charge.dispute.closed', disputed('won'))]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(550 - 500 + 1200);
      const grants = await grantsOf(h, purchase.account.id);
      expect(grants.map((grant) => [grant.amount, grant.remaining, grant.owed])).toEqual([
        [550, 50, 0],
        [1200, 1200, 0],
      ]);
    });

    it('when a dispute is won and the purchase is then refunded by half, then half of its credits are revoked once', async () => {
      const purchase = await grantedPurchase(h, 'growth');
      const disputeId = stripeId('dp');
      const disputed = (status: string) =>
        dispute({
          id: disputeId,
          paymentIntentId: purchase.paymentIntentId,
          status,
          amount: purchase.terms.amount,
        });
      await deliverAndSettle(h, [stripeEvent('charge.dispute.created', disputed('needs_response'))]);
      await deliverAndSettle(h, [stripeEvent('charge.dispute.closed', disputed('won'))]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(550);
      await deliverAndSettle(h, [purchase.refunded(purchase.terms.amount / 2)]);
      await deliverAndSettle(h, [purchase.refunded(purchase.terms.amount / 2)]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(275);
    });

    it('when a purchase whose grant was partly voided is refunded in full, then the voided credits are not taken again', async () => {
      const purchase = await grantedPurchase(h, 'starter');
      const [grant] = await grantsOf(h, purchase.account.id);
      expect(
        (
          await h.api('POST', `/v1/accounts/${purchase.account.id}/grants/${grant?.id}/void`, {
            reason: 'test',
          })
        ).status,
      ).toBe(200);
      expect(await checkedBalance(h, purchase.account.id)).toBe(0);
      await deliverAndSettle(h, [purchase.refunded(purchase.terms.amount)]);
      expect(await checkedBalance(h, purchase.account.id)).toBe(0);
    });
  });

  describe('promotional and manual grants through the API', () => {
    it('when a promotional grant is made twice with one key, then one grant exists, recorded with the key that made it', async () => {
      const account = await h.newAccount();
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
      const body = { amount: 250, reason: 'launch promotion', idempotencyKey: 'promo-1', expiresAt };
      const [first, second] = await Promise.all([
        h.api('POST', `/v1/accounts/${account.id}/grants`, body),
        h.api('POST', `/v1/accounts/${account.id}/grants`, body),
      ]);
      // One made the grant; the other is its replay: the same answer.
      expect([first.status, second.status]).toEqual([201, 201]);
      expect(second.body).toEqual(first.body);
      expect(first.body).toMatchObject({
        amount: 250,
        remaining: 250,
        category: 'promotional',
        source: 'promotional',
        status: 'live',
        createdBy: ADMIN_KEY_NAME,
        reason: 'launch promotion',
        expiresAt,
      });
      const reused = await h.api('POST', `/v1/accounts/${account.id}/grants`, { ...body, amount: 300 });
      expect(reused).toMatchObject({ status: 409, body: { error: { code: 'idempotency_key_reused' } } });
      const list = await h.api('GET', `/v1/accounts/${account.id}/grants`);
      expect(list.body.grants).toHaveLength(1);
      expect(await checkedBalance(h, account.id)).toBe(250);
    });

    it('when a grant is voided after part of it was spent, then only the unused rest is taken, once', async () => {
      const account = await h.newAccount();
      const made = await h.api('POST', `/v1/accounts/${account.id}/grants`, {
        amount: 100,
        category: 'paid',
        reason: 'goodwill',
        idempotencyKey: 'manual-1',
      });
      expect(made.body).toMatchObject({ source: 'manual', category: 'paid', priority: 100 });
      expect((await debit(account.id, 30, 'job-1')).status).toBe(201);
      const voids = await Promise.all(
        [1, 2, 3].map(() =>
          h.api('POST', `/v1/accounts/${account.id}/grants/${made.body.id}/void`, { reason: 'mistake' }),
        ),
      );
      expect(voids.map((answer) => answer.status)).toEqual([200, 200, 200]);
      expect(voids[0]?.body).toMatchObject({ status: 'voided', remaining: 0 });
      const voidRows = (await ledgerOf(h, account.id)).filter((row) => row.kind === 'void');
      expect(voidRows).toEqual([
        expect.objectContaining({ delta: -70, reason: `voided by ${ADMIN_KEY_NAME}: mistake` }),
      ]);
      expect(await checkedBalance(h, account.id)).toBe(0);
    });

    it('when a grant request is malformed or names another account, then it is refused and nothing changes', async () => {
      const account = await h.newAccount();
      const other = await h.newAccount();
      const cases = [
        { amount: 0, reason: 'x', idempotencyKey: 'k' },
        { amount: 10, reason: 'x', idempotencyKey: 'k', expiresAt: '2001-01-01T00:00:00Z' },
        { amount: 10, reason: 'x', idempotencyKey: 'k', category: 'free' },
        { amount: 10, reason: 'x', idempotencyKey: 'k', priority: 5000 },
        { amount: 10, reason: '', idempotencyKey: 'k' },
      ];
      for (const body of cases) {
        const answer = await h.api('POST', `/v1/accounts/${account.id}/grants`, body);
        expect(answer).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
      }
      const made = await h.api('POST', `/v1/accounts/${other.id}/grants`, {
        amount: 10,
        reason: 'x',
        idempotencyKey: 'k',
      });
      const foreign = await h.api('POST', `/v1/accounts/${account.id}/grants/${made.body.id}/void`, {
        reason: 'x',
      });
      expect(foreign).toMatchObject({ status: 404, body: { error: { code: 'grant_not_found' } } });
      expect(await checkedBalance(h, account.id)).toBe(0);
      expect(await checkedBalance(h, other.id)).toBe(10);
    });
  });

  describe('reservations', () => {
    async function funded(amount: number) {
      const account = await h.newAccount();
      await h.api('POST', `/v1/accounts/${account.id}/grants`, {
        amount,
        category: 'paid',
        reason: 'funding',
        idempotencyKey: 'fund',
      });
      return account;
    }

    it('when 200 holds and debits race on one account, then nothing is overdrawn and available never goes below zero', async () => {
      const account = await funded(1000);
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, index) =>
          index % 2 === 0
            ? h.api('POST', `/v1/accounts/${account.id}/reservations`, {
                amount: 10,
                ttlSeconds: 600,
                idempotencyKey: `hold-${index}`,
              })
            : debit(account.id, 10, `job-${index}`),
        ),
      );
      const succeeded = answers.filter((answer) => answer.status === 201);
      // Every answer is a hold or debit made, or refused for want of credits: nothing else.
      expect(answers.filter((answer) => answer.status !== 201 && answer.status !== 402)).toEqual([]);
      expect(succeeded).toHaveLength(100);
      const view = await h.api('GET', `/v1/accounts/${account.id}`);
      const holds = answers.filter((answer, index) => index % 2 === 0 && answer.status === 201).length;
      expect(view.body).toMatchObject({ available: 0, held: holds * 10, balance: 1000 - (100 - holds) * 10 });
      expect(await checkedBalance(h, account.id)).toBe(view.body.balance);
    });

    it('when a hold is captured in part, then the captured credits are debited and the rest is free again', async () => {
      const account = await funded(100);
      const hold = await h.api('POST', `/v1/accounts/${account.id}/reservations`, {
        amount: 60,
        ttlSeconds: 600,
        idempotencyKey: 'render-1',
      });
      expect(hold).toMatchObject({ status: 201, body: { status: 'held', amount: 60 } });
      expect((await debit(account.id, 41, 'job-1')).status).toBe(402);
      const path = `/v1/accounts/${account.id}/reservations/${hold.body.id}`;
      const tooMuch = await h.api('POST', `${path}/capture`, { amount: 61, reason: 'render' });
      expect(tooMuch).toMatchObject({ status: 422, body: { error: { code: 'capture_exceeds_hold' } } });
      const [captured, replay] = await Promise.all([
        h.api('POST', `${path}/capture`, { amount: 45, reason: 'render' }),
        h.api('POST', `${path}/capture`, { amount: 45, reason: 'render' }),
      ]);
      expect(captured).toMatchObject({
        status: 201,
        body: { status: 'captured', captured: 45, balance: 55 },
      });
      expect(replay.body.entryId).toBe(captured.body.entryId);
      const released = await h.api('POST', `${path}/release`);
      expect(released.body.status).toBe('captured');
      const view = await h.api('GET', `/v1/accounts/${account.id}`);
      expect(view.body).toMatchObject({ balance: 55, held: 0, available: 55 });
      expect((await h.api('POST', `${path}/capture`, { amount: 10, reason: 'x' })).status).toBe(409);
    });

    it('when a hold reaches its TTL uncaptured, then its timer releases it and a late capture is refused', async () => {
      const account = await funded(50);
      const hold = await h.api('POST', `/v1/accounts/${account.id}/reservations`, {
        amount: 50,
        ttlSeconds: 1,
        idempotencyKey: 'short',
      });
      const path = `/v1/accounts/${account.id}/reservations/${hold.body.id}`;
      const result = await h.temporal.workflow.getHandle(`reservation:${hold.body.id}`).result();
      expect(result).toEqual({ status: 'expired' });
      expect((await h.api('GET', path)).body.status).toBe('expired');
      expect((await h.api('POST', `${path}/capture`, { reason: 'late' })).status).toBe(409);
      expect((await h.api('GET', `/v1/accounts/${account.id}`)).body).toMatchObject({
        held: 0,
        available: 50,
      });
    });

    it('when a hold outlives its TTL with no timer, then the maintenance sweep releases it', async () => {
      const account = await funded(20);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 20,
        ttlSeconds: 1,
        idempotencyKey: 'no-timer',
      });
      await sleep(1100);
      await runMaintenance(h);
      const view = await h.api('GET', `/v1/accounts/${account.id}/reservations/${reservation.id}`);
      expect(view.body.status).toBe('expired');
      expect((await h.api('GET', `/v1/accounts/${account.id}`)).body).toMatchObject({
        held: 0,
        available: 20,
      });
    });
  });

  it('when a debit asks for more than the live grants hold, then it is refused and nothing moves', async () => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'ten', amount: 10, category: 'paid' });
    await expect(
      h.sql.begin((tx) =>
        drawDown(tx, {
          accountId: account.id,
          amount: 11,
          businessKey: `test:${account.id}:d`,
          kind: 'debit',
          reason: null,
        }),
      ),
    ).rejects.toThrow(/available/);
    expect(await checkedBalance(h, account.id)).toBe(10);
  });

  describe('grant keys replayed, and balances at the edge of a JS number', () => {
    it('when a grant key is replayed with another priority, then 409 idempotency_key_reused and the grant keeps its priority', async () => {
      const account = await h.newAccount();
      const grant = {
        amount: 50,
        category: 'promotional',
        reason: 'launch',
        idempotencyKey: `promo-${randomUUID()}`,
        priority: 5,
      };
      const first = await h.api('POST', `/v1/accounts/${account.id}/grants`, grant);
      expect(first.status).toBe(201);

      const changed = await h.api('POST', `/v1/accounts/${account.id}/grants`, { ...grant, priority: 900 });
      expect(changed.status).toBe(409);
      expect(changed.body.error.code).toBe('idempotency_key_reused');
    });

    it('when a grant would take the balance past 2^53, then a 4xx with a stable code and nothing moves, not 500 internal_error', async () => {
      const account = await h.newAccount();
      const grant = (amount: number) =>
        h.api('POST', `/v1/accounts/${account.id}/grants`, {
          amount,
          reason: 'huge',
          idempotencyKey: `huge-${randomUUID()}`,
        });
      expect((await grant(Number.MAX_SAFE_INTEGER)).status).toBe(201);

      const overflow = await grant(2);
      expect(overflow.status).toBeGreaterThanOrEqual(400);
      expect(overflow.status).toBeLessThan(500);
      expect(overflow.body.error.code).not.toBe('internal_error');
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);
    });

    const grant = (accountId: string, amount: number, idempotencyKey: string) =>
      h.api('POST', `/v1/accounts/${accountId}/grants`, { amount, reason: 'huge', idempotencyKey });

    it('when a grant takes the balance one past 2^53 − 1, then 422 balance_out_of_range and nothing changes', async () => {
      const account = await h.newAccount();
      expect((await grant(account.id, Number.MAX_SAFE_INTEGER - 1, `a-${randomUUID()}`)).status).toBe(201);
      const before = await h.api('GET', `/v1/accounts/${account.id}/grants`);

      const over = await grant(account.id, 2, `b-${randomUUID()}`);
      expect(over.status).toBe(422);
      expect(over.body.error.code).toBe('balance_out_of_range');
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER - 1);
      expect(await h.api('GET', `/v1/accounts/${account.id}/grants`)).toEqual(before);
      expect(await ledgerOf(h, account.id)).toHaveLength(1);

      // Exactly 2^53 − 1 is still a balance the service holds.
      expect((await grant(account.id, 1, `c-${randomUUID()}`)).status).toBe(201);
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);
    });

    it('when the balance sits at 2^53 − 1 and an earlier grant is replayed, then 201 answers the original grant and nothing changes', async () => {
      const account = await h.newAccount();
      const key = `a-${randomUUID()}`;
      const first = await grant(account.id, Number.MAX_SAFE_INTEGER - 5, key);
      expect(first.status).toBe(201);
      expect((await grant(account.id, 5, `b-${randomUUID()}`)).status).toBe(201);
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);

      const replay = await grant(account.id, Number.MAX_SAFE_INTEGER - 5, key);
      expect(replay).toEqual({ status: 201, body: first.body });
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);
      expect(await ledgerOf(h, account.id)).toHaveLength(2);
    });
  });
});
