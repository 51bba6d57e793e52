import { randomUUID } from 'node:crypto';
import { closeGrant, reviseRevocation } from '../../credits/grants';
import { holdCredits } from '../../credits/reservations';
import { checkedBalance, grantDirectly } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

/**
 * A hold never outlives the credits it holds. When credits a hold was holding go without asking
 * (they expire, an operator voids them, a refund takes them back), the holds shrink to what the
 * account's live credits less its debt still cover, newest first; each records by how much and
 * why, one left with nothing is released, `available` stays at or above zero, and a capture of
 * what a hold still holds goes through. No worker runs here: the expiries are run by hand.
 */
describe('holds and the credits behind them', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const hold = (accountId: string, amount: number) =>
    holdCredits(h.sql, { accountId, amount, ttlSeconds: 600, idempotencyKey: `hold-${randomUUID()}` });

  /** Makes the grant due now and runs its expiry, as the maintenance sweep would. */
  async function expireNow(grantId: number) {
    await h.sql`UPDATE credit_grants SET expires_at = now() WHERE id = ${grantId}`;
    return closeGrant(h.sql, grantId, { as: 'expired' });
  }

  const summary = async (accountId: string) =>
    (await h.api('GET', `/v1/accounts/${accountId}`)).body as {
      balance: number;
      held: number;
      available: number;
    };
  const reservation = async (accountId: string, id: string): Promise<Record<string, unknown>> =>
    (await h.api('GET', `/v1/accounts/${accountId}/reservations/${id}`)).body as Record<string, unknown>;

  it('when promotional credits a hold of 40 was holding expire, then the hold is released, available is 0 (not −40), and its capture is refused as settled', async () => {
    const account = await h.newAccount();
    const promo = await grantDirectly(h.sql, account.id, {
      key: 'promo',
      amount: 40,
      category: 'promotional',
      expiresAt: new Date(Date.now() + 3600_000),
    });
    const { reservation: held } = await hold(account.id, 40);

    await expireNow(promo.grant.id);

    expect(await summary(account.id)).toMatchObject({ balance: 0, held: 0, available: 0 });
    expect(await reservation(account.id, held.id)).toMatchObject({
      status: 'released',
      amount: 40,
      held: 0,
      shrunk: 40,
      shrinkReason: expect.stringContaining('expired'),
    });
    const capture = await h.api('POST', `/v1/accounts/${account.id}/reservations/${held.id}/capture`, {
      reason: 'render',
    });
    expect(capture.status).toBe(409);
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  it('when part of what a hold holds expires, then it shrinks to what is left and a capture of the rest succeeds', async () => {
    const account = await h.newAccount();
    const promo = await grantDirectly(h.sql, account.id, {
      key: 'promo',
      amount: 30,
      category: 'promotional',
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await grantDirectly(h.sql, account.id, { key: 'paid', amount: 20 });
    const { reservation: held } = await hold(account.id, 40);

    await expireNow(promo.grant.id);

    expect(await summary(account.id)).toMatchObject({ balance: 20, held: 20, available: 0 });
    expect(await reservation(account.id, held.id)).toMatchObject({ status: 'held', held: 20, shrunk: 20 });
    const capture = await h.api('POST', `/v1/accounts/${account.id}/reservations/${held.id}/capture`, {
      reason: 'render',
    });
    expect(capture.status).toBe(201);
    expect(capture.body).toMatchObject({ status: 'captured', captured: 20, balance: 0 });
    expect(await summary(account.id)).toMatchObject({ balance: 0, held: 0, available: 0 });
    expect(await checkedBalance(h, account.id)).toBe(0);
  });

  it('when a grant is past its expiry but not swept yet, then available counts no hold beyond the live credits, and a capture shrinks the hold first', async () => {
    const account = await h.newAccount();
    const promo = await grantDirectly(h.sql, account.id, {
      key: 'promo',
      amount: 30,
      category: 'promotional',
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await grantDirectly(h.sql, account.id, { key: 'paid', amount: 10 });
    const { reservation: held } = await hold(account.id, 35);
    await h.sql`UPDATE credit_grants SET expires_at = now() WHERE id = ${promo.grant.id}`;

    expect((await summary(account.id)).available).toBe(0);
    const capture = await h.api('POST', `/v1/accounts/${account.id}/reservations/${held.id}/capture`, {
      reason: 'render',
    });
    expect(capture.status).toBe(201);
    expect(capture.body).toMatchObject({ captured: 10, shrunk: 25 });
  });

  it('when credits behind two holds go, then the newest hold shrinks first', async () => {
    const account = await h.newAccount();
    const promo = await grantDirectly(h.sql, account.id, {
      key: 'promo',
      amount: 25,
      category: 'promotional',
      expiresAt: new Date(Date.now() + 3600_000),
    });
    await grantDirectly(h.sql, account.id, { key: 'paid', amount: 25 });
    const { reservation: older } = await hold(account.id, 30);
    const { reservation: newer } = await hold(account.id, 20);

    await expireNow(promo.grant.id);

    expect(await reservation(account.id, newer.id)).toMatchObject({ status: 'released', shrunk: 20 });
    expect(await reservation(account.id, older.id)).toMatchObject({ status: 'held', held: 25, shrunk: 5 });
    expect(await summary(account.id)).toMatchObject({ balance: 25, held: 25, available: 0 });
  });

  it('when an operator voids the grant a hold was holding, then the hold shrinks with it', async () => {
    const account = await h.newAccount();
    const paid = await grantDirectly(h.sql, account.id, { key: 'paid', amount: 50 });
    const { reservation: held } = await hold(account.id, 50);

    const voided = await h.api('POST', `/v1/accounts/${account.id}/grants/${paid.grant.id}/void`, {
      reason: 'granted by mistake',
    });
    expect(voided.status).toBe(200);

    expect(await reservation(account.id, held.id)).toMatchObject({
      status: 'released',
      shrunk: 50,
      shrinkReason: expect.stringContaining('voided'),
    });
    expect(await summary(account.id)).toMatchObject({ balance: 0, held: 0, available: 0 });
  });

  it('when a refund takes back credits a hold was holding, then the hold shrinks to what is left', async () => {
    const account = await h.newAccount();
    const bought = await grantDirectly(h.sql, account.id, { key: 'bought', amount: 100 });
    const { reservation: held } = await hold(account.id, 80);

    await h.sql.begin((tx) =>
      reviseRevocation(tx, bought.grant.id, 60, {
        businessKey: `refund-${randomUUID()}`,
        kind: 'refund',
        reason: 'refunded',
      }),
    );

    expect(await reservation(account.id, held.id)).toMatchObject({ status: 'held', held: 40, shrunk: 40 });
    expect(await summary(account.id)).toMatchObject({ balance: 40, held: 40, available: 0 });
    expect(await checkedBalance(h, account.id)).toBe(40);
  });
});
