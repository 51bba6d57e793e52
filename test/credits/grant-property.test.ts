import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { createAccount } from '../../credits/accounts';
import { createSql, type Sql } from '../../db/client';
import { closeGrant, createGrant, drawDown, reviseRevocation } from '../../credits/grants';
import { captureReservation, holdCredits, releaseReservation } from '../../credits/reservations';
import { BillingError } from '../../domain/errors';

/**
 * Random interleavings of every movement the grant model knows, applied to one account and
 * each one sometimes twice: grants (paid or promotional, with or without expiry), debits, holds
 * and their capture or release, expiries, voids, and refunds and disputes (revocations that go
 * up, and come down when a dispute is won). After every step the books must agree.
 */

const operation = fc.oneof(
  fc.record({
    op: fc.constant('grant' as const),
    amount: fc.integer({ min: 1, max: 500 }),
    promotional: fc.boolean(),
    expiresInMs: fc.option(fc.integer({ min: 1, max: 400 }), { nil: null }),
  }),
  fc.record({ op: fc.constant('debit' as const), amount: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ op: fc.constant('hold' as const), amount: fc.integer({ min: 1, max: 200 }) }),
  fc.record({
    op: fc.constant('settle' as const),
    which: fc.nat(),
    capture: fc.option(fc.integer({ min: 1, max: 200 }), { nil: null }),
  }),
  fc.record({ op: fc.constant('expire' as const), which: fc.nat() }),
  fc.record({ op: fc.constant('void' as const), which: fc.nat() }),
  // A refund or dispute moving what is revoked from one grant to a share of its amount.
  fc.record({ op: fc.constant('revoke' as const), which: fc.nat(), share: fc.constantFrom(0, 0.25, 0.5, 1) }),
  fc.record({ op: fc.constant('sleep' as const), ms: fc.integer({ min: 0, max: 200 }) }),
);

const scenario = fc.array(fc.record({ step: operation, twice: fc.boolean() }), {
  minLength: 5,
  maxLength: 25,
});

describe('credit grants under any interleaving', () => {
  let sql: Sql;
  beforeAll(() => {
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 4 });
  });
  afterAll(async () => {
    await sql?.end();
  });

  async function books(accountId: string) {
    const [row] = await sql<
      {
        balance: string;
        held: string;
        ledger: string;
        grants: string;
        overdrawn: string;
        over_revoked: string;
        open_holds: string;
        duplicate_keys: string;
      }[]
    >`
      SELECT b.balance, b.held,
        (SELECT COALESCE(SUM(delta), 0) FROM credit_ledger WHERE account_id = b.account_id) AS ledger,
        (SELECT COALESCE(SUM(remaining) - SUM(owed), 0) FROM credit_grants WHERE account_id = b.account_id) AS grants,
        (SELECT count(*) FROM credit_grants WHERE account_id = b.account_id
           AND (remaining + drawn + expired + voided + revoked_remaining <> amount OR remaining > amount)) AS overdrawn,
        (SELECT count(*) FROM credit_grants WHERE account_id = b.account_id
           AND revoked_remaining + owed + repaid > remaining + drawn + revoked_remaining) AS over_revoked,
        -- What each open hold holds now: a hold shrinks when the credits behind it go.
        (SELECT COALESCE(SUM(amount - shrunk), 0) FROM credit_reservations WHERE account_id = b.account_id AND status = 'held') AS open_holds,
        (SELECT count(*) - count(DISTINCT business_key) FROM credit_ledger WHERE account_id = b.account_id) AS duplicate_keys
      FROM credit_balances b WHERE b.account_id = ${accountId}`;
    if (!row) throw new Error('no balance row');
    return row;
  }

  it('when grants, debits, holds, expiries, voids and reversals interleave and repeat, then balance = Σ ledger = Σ remaining − debt, no grant gives more than its amount, and nothing moves twice', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (steps) => {
        const accountId = `prop_${randomUUID()}`;
        await createAccount(sql, { id: accountId, email: 'prop@customers.test' });
        const grants: number[] = [];
        const holds: string[] = [];
        const pick = <T>(items: T[], which: number) =>
          items.length ? items[which % items.length] : undefined;

        for (const [index, { step, twice }] of steps.entries()) {
          const key = `prop:${accountId}:${index}`;
          const run = async () => {
            switch (step.op) {
              case 'grant': {
                const { grant } = await sql.begin((tx) =>
                  createGrant(tx, {
                    accountId,
                    source: step.promotional ? 'promotional' : 'manual',
                    category: step.promotional ? 'promotional' : 'paid',
                    priority: step.promotional ? 10 : 100,
                    expiresAt: step.expiresInMs === null ? null : new Date(Date.now() + step.expiresInMs),
                    amount: step.amount,
                    businessKey: key,
                    kind: 'grant',
                    reason: null,
                  }),
                );
                if (!grants.includes(grant.id)) grants.push(grant.id);
                return;
              }
              case 'debit':
                await sql
                  .begin((tx) =>
                    drawDown(tx, {
                      accountId,
                      amount: step.amount,
                      businessKey: key,
                      kind: 'debit',
                      reason: null,
                    }),
                  )
                  .catch(ignore('insufficient_credits'));
                return;
              case 'hold': {
                const held = await holdCredits(sql, {
                  accountId,
                  amount: step.amount,
                  ttlSeconds: 600,
                  idempotencyKey: key,
                }).catch(ignore('insufficient_credits'));
                if (held && !holds.includes(held.reservation.id)) holds.push(held.reservation.id);
                return;
              }
              case 'settle': {
                const reservationId = pick(holds, step.which);
                if (!reservationId) return;
                if (step.capture === null) {
                  await releaseReservation(sql, { accountId, reservationId, as: 'released' });
                  return;
                }
                await captureReservation(sql, {
                  accountId,
                  reservationId,
                  amount: step.capture,
                  reason: 'x',
                }).catch(ignore('reservation_settled', 'insufficient_credits', 'capture_exceeds_hold'));
                return;
              }
              case 'expire':
              case 'void': {
                const grantId = pick(grants, step.which);
                if (grantId !== undefined) {
                  await closeGrant(sql, grantId, { as: step.op === 'expire' ? 'expired' : 'voided' });
                }
                return;
              }
              case 'revoke': {
                const grantId = pick(grants, step.which);
                if (grantId === undefined) return;
                const [row] = await sql<
                  { amount: string }[]
                >`SELECT amount FROM credit_grants WHERE id = ${grantId}`;
                const target = Math.floor(Number(row?.amount) * step.share);
                await sql.begin((tx) =>
                  reviseRevocation(tx, grantId, target, {
                    businessKey: key,
                    kind: 'refund',
                    reason: 'property',
                  }),
                );
                return;
              }
              case 'sleep':
                await new Promise((resolve) => setTimeout(resolve, step.ms));
                return;
            }
          };
          await (twice ? Promise.all([run(), run()]) : run());

          const state = await books(accountId);
          expect(state.balance).toBe(state.ledger);
          expect(state.balance).toBe(state.grants);
          expect(state.held).toBe(state.open_holds);
          expect(state.overdrawn).toBe('0');
          expect(state.over_revoked).toBe('0');
          expect(state.duplicate_keys).toBe('0');
        }
      }),
      { numRuns: 40 },
    );
  });
});

/** Swallows the refusals a step may meet (not enough credits, a settled hold); rethrows the rest. */
function ignore(...codes: string[]) {
  return (error: unknown): undefined => {
    if (error instanceof BillingError && codes.includes(error.code)) return undefined;
    throw error;
  };
}
