import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import {
  closeGrant,
  debitCredits,
  findOrphanRows,
  recordUsage,
  reviseRevocation,
  type UsageEventInput,
} from '../../credits/index';
import { creditsForUnits, type FeaturePrice } from '../../domain/usage-pricing';
import { checkedBalance, grantDirectly } from '../support/billing';
import { startHarness, type Harness } from '../support/harness';

/**
 * A property over random interleavings of usage (batches, replays), debits, grants, expiries and
 * refunds, run against the credit engine on real PostgreSQL: for each feature the credits burned
 * equal its accepted usage priced once (rounded down once: within one credit, never more); where
 * the policy is refusal (refusing features, debits, refunds that take back only what is left of a
 * grant) the balance and the available credits never go below zero; and after every step
 * balance = Σ ledger = Σ grants, each usage ledger row burning exactly its events.
 */

const PRICES: Record<string, FeaturePrice & { refuse: boolean }> = {
  'llm-tokens': { credits: 1, units: 1000, refuse: true },
  'image-generation': { credits: 5, units: 1, refuse: true },
  'api-calls': { credits: 1, units: 100, refuse: false },
  'storage-gb-hours': { credits: 3, units: 20, refuse: false },
};

type Step =
  | { kind: 'usage'; events: Array<{ feature: string; quantity: number }>; replay: boolean }
  | { kind: 'debit'; amount: number }
  | { kind: 'grant'; amount: number; promotional: boolean }
  | { kind: 'expire'; pick: number }
  | { kind: 'refund'; pick: number; amount: number };

function steps(allowDebt: boolean) {
  const features = Object.keys(PRICES).filter((key) => allowDebt || PRICES[key]?.refuse);
  const usage = fc.record({
    kind: fc.constant('usage' as const),
    events: fc.array(
      fc.record({
        feature: fc.constantFrom(...features),
        quantity: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 5000 })),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    replay: fc.boolean(),
  });
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 5, arbitrary: usage },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('debit' as const), amount: fc.integer({ min: 1, max: 40 }) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('grant' as const),
        amount: fc.integer({ min: 1, max: 200 }),
        promotional: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), pick: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('refund' as const),
        pick: fc.nat(),
        amount: fc.integer({ min: 1, max: 200 }),
      }),
    },
  );
  return fc.array(step, { minLength: 1, maxLength: 25 });
}

describe('usage among debits, grants, expiries and refunds (property, real PostgreSQL)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function run(allowDebt: boolean, plan: Step[]): Promise<void> {
    const account = (await h.newAccount()).id;
    const grants: Array<{ id: number; promotional: boolean; refunded: boolean }> = [];
    const units = new Map<string, bigint>();
    const burned = new Map<string, bigint>();
    let sent: UsageEventInput[] = [];
    const recorded = new Set<string>();

    const grant = async (amount: number, promotional: boolean) => {
      const made = await grantDirectly(h.sql, account, {
        key: randomUUID(),
        amount,
        category: promotional ? 'promotional' : 'paid',
        expiresAt: promotional ? new Date(Date.now() + 3600_000) : null,
      });
      grants.push({ id: made.grant.id, promotional, refunded: false });
    };
    await grant(100, false);

    for (const step of plan) {
      switch (step.kind) {
        case 'usage': {
          const events: UsageEventInput[] = step.events.map((e) => ({
            accountId: account,
            eventId: randomUUID(),
            feature: e.feature,
            quantity: e.quantity,
            occurredAt: null,
            properties: null,
            reservationId: null,
          }));
          const batch = step.replay && sent.length > 0 ? [...sent, ...events] : events;
          const { outcomes } = await recordUsage(h.sql, batch);
          outcomes.forEach((outcome, i) => {
            const event = batch[i] as UsageEventInput;
            // Counted once: a replay of an accepted event is its duplicate; one refused before may pass now.
            expect(outcome.status === 'duplicate').toBe(recorded.has(event.eventId));
            if (outcome.status !== 'accepted') {
              if (outcome.status === 'refused') expect(outcome.code).toBe('insufficient_credits');
              return;
            }
            recorded.add(event.eventId);
            units.set(event.feature, (units.get(event.feature) ?? 0n) + BigInt(event.quantity));
            burned.set(event.feature, (burned.get(event.feature) ?? 0n) + BigInt(outcome.credits));
          });
          sent = events;
          break;
        }
        case 'debit':
          await debitCredits(h.sql, {
            accountId: account,
            amount: step.amount,
            idempotencyKey: `debit-${randomUUID()}`,
            reason: 'work',
          }).catch((error: { code?: string }) => {
            if (error.code !== 'insufficient_credits') throw error;
          });
          break;
        case 'grant':
          await grant(step.amount, step.promotional);
          break;
        case 'expire': {
          const open = grants.filter((g) => g.promotional);
          const chosen = open[step.pick % Math.max(open.length, 1)];
          if (!chosen) break;
          await h.sql`UPDATE credit_grants SET expires_at = now() WHERE id = ${chosen.id} AND closed_at IS NULL`;
          await closeGrant(h.sql, chosen.id, { as: 'expired' }).catch((error: { code?: string }) => {
            if (!error.code) throw error; // closed before: answered with a stable code
          });
          open.splice(open.indexOf(chosen), 1);
          chosen.promotional = false;
          chosen.refunded = true;
          break;
        }
        case 'refund': {
          const paid = grants.filter((g) => !g.promotional && !g.refunded);
          const chosen = paid[step.pick % Math.max(paid.length, 1)];
          if (!chosen) break;
          chosen.refunded = true;
          // Refusal policy: a refund takes back at most what is left of the grant (no debt).
          const [left] = await h.sql<{ remaining: string }[]>`
            SELECT remaining::text FROM credit_grants WHERE id = ${chosen.id}`;
          const target = Math.min(step.amount, Number(left?.remaining ?? 0));
          if (target === 0) break;
          await h.sql.begin((tx) =>
            reviseRevocation(tx, chosen.id, target, {
              businessKey: `refund-${randomUUID()}`,
              kind: 'refund',
              reason: 'refunded',
            }),
          );
          break;
        }
      }

      const balance = await checkedBalance(h, account);
      const summary = (await h.api('GET', `/v1/accounts/${account}`)).body as { available: number };
      if (!allowDebt) {
        expect(balance).toBeGreaterThanOrEqual(0);
        expect(summary.available).toBeGreaterThanOrEqual(0);
      }
    }

    for (const [feature, used] of units) {
      const price = PRICES[feature] as FeaturePrice;
      const exact = creditsForUnits(used, price);
      expect({ feature, burned: burned.get(feature) }).toEqual({ feature, burned: exact });
      // …and so never more than the usage priced once, and less by under one credit.
      expect((burned.get(feature) ?? 0n) * BigInt(price.units) <= used * BigInt(price.credits)).toBe(true);
    }
    const [stored] = await h.sql<{ credits: string }[]>`
      SELECT COALESCE(SUM(credits), 0)::text AS credits FROM usage_events WHERE account_id = ${account}`;
    const total = [...burned.values()].reduce((a, b) => a + b, 0n);
    expect(BigInt(stored?.credits ?? '0')).toBe(total);
    expect((await findOrphanRows(h.sql)).usageRows).toBe(0);
  }

  it('where usage beyond the credits is refused: burned = priced usage, never below zero, the books agree', async () => {
    await fc.assert(
      fc.asyncProperty(steps(false), (plan) => run(false, plan)),
      { numRuns: 60 },
    );
  });

  it('where some features allow debt: burned = priced usage and the books agree', async () => {
    await fc.assert(
      fc.asyncProperty(steps(true), (plan) => run(true, plan)),
      { numRuns: 60 },
    );
  });
});
