import fc from 'fast-check';
import { refundKey } from '../../activities/reversals/reversals';
import { creditsForRefund } from '../../domain/reversal-rules';
import { dispute, stripeEvent, stripeId, type StripeEvent } from '../../stripe/fixtures/index';
import {
  PACKS,
  PLANS,
  checkedBalance,
  grantedPurchase,
  grantsOf,
  ledgerOf,
  newSubscription,
  runMaintenance,
} from '../support/billing';
import { startHarness, type Harness } from '../support/harness';
import { sleep } from '../support/wait';

/**
 * Random interleavings, duplicates and delays of the Stripe events of several purchases (with
 * refunds and disputes) and subscriptions (with renewals). Whatever the order, every account ends where its
 * business keys say, and its balance equals the sum of its ledger.
 */

const scenarios = fc.record({
  purchases: fc.array(
    fc.record({
      pack: fc.constantFrom<keyof typeof PACKS>('starter', 'growth', 'scale'),
      /** Cumulative refunds, in quarters of the amount paid. */
      refundQuarters: fc.subarray([1, 2, 4]),
      /** A dispute of the payment, opened and closed with this outcome, or none. */
      dispute: fc.constantFrom<'won' | 'lost' | null>(null, 'won', 'lost'),
    }),
    { minLength: 1, maxLength: 3 },
  ),
  subscriptions: fc.array(
    fc.record({
      plan: fc.constantFrom<keyof typeof PLANS>('basic', 'pro'),
      periods: fc.integer({ min: 1, max: 3 }),
    }),
    { minLength: 1, maxLength: 2 },
  ),
});

/** How the events are delivered: an order (ranks), which ones go twice, and a delay for each. */
const deliveries = fc.record({
  ranks: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 40, maxLength: 40 }),
  twice: fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
  delaysMs: fc.array(fc.integer({ min: 0, max: 150 }), { minLength: 40, maxLength: 40 }),
});

describe('any order of money events', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('when purchases, refunds, disputes and subscriptions are delivered in random order, duplicated and delayed, then every balance is what the business keys say and equals the ledger', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios, deliveries, async (scenario, delivery) => {
        const events: StripeEvent[] = [];
        const checks: Array<() => Promise<void>> = [];

        for (const spec of scenario.purchases) {
          // Its checkout event is shuffled with the rest: a refund may arrive before the grant.
          const purchase = await fixturePurchase(spec.pack, events);
          const totals = spec.refundQuarters.map((quarters) => (purchase.terms.amount * quarters) / 4);
          events.push(...totals.map((total) => purchase.refunded(total)));
          const disputeId = stripeId('dp');
          if (spec.dispute) {
            const object = (status: string) =>
              dispute({ id: disputeId, paymentIntentId: purchase.paymentIntentId, status });
            events.push(
              stripeEvent('charge.dispute.created', object('needs_response')),
              stripeEvent('charge.dispute.closed', object(spec.dispute)),
            );
          }
          checks.push(async () => {
            const ledger = await ledgerOf(h, purchase.account.id);
            const { credits, amount } = purchase.terms;
            const refunded = creditsForRefund({ credits, amountCents: amount }, Math.max(0, ...totals));
            const revoked = spec.dispute === 'lost' ? credits : refunded;
            expect(ledger.filter((row) => row.key === purchase.session.id)).toHaveLength(1);
            const reversals = ledger.filter((row) => row.key !== purchase.session.id);
            const knownKeys = [
              ...totals.map((total) => refundKey(purchase.chargeId, total)),
              `dispute:${disputeId}`,
              `dispute:${disputeId}:closed`,
            ];
            expect(reversals.every((row) => knownKeys.includes(row.key))).toBe(true);
            expect(reversals.reduce((sum, row) => sum - row.delta, 0)).toBe(revoked);
            expect(await checkedBalance(h, purchase.account.id)).toBe(credits - revoked);
          });
        }

        for (const spec of scenario.subscriptions) {
          // Every period but the latest is over by now.
          const fixture = await newSubscription(h, spec.plan, { startedPeriodsAgo: spec.periods - 1 });
          const invoices = Array.from({ length: spec.periods }, (_, month) =>
            month === 0 ? fixture.firstInvoice : fixture.renewal(month),
          );
          events.push(...fixture.startEvents());
          for (const renewal of invoices.slice(1)) {
            events.push(
              stripeEvent('invoice.paid', renewal),
              stripeEvent('invoice.payment_succeeded', renewal),
            );
          }
          checks.push(async () => {
            const ledger = await ledgerOf(h, fixture.account.id);
            for (const paid of invoices) expect(ledger.filter((row) => row.key === paid.id)).toHaveLength(1);
            const expiries = ledger.filter((row) => row.kind === 'expiry');
            // Without rollover every period but the latest expired, whole (nothing was spent).
            const ended = new Set(fixture.terms.rollover ? [] : invoices.slice(0, -1).map((paid) => paid.id));
            const grants = await grantsOf(h, fixture.account.id);
            const expiredGrants = grants.filter((grant) => grant.closed === 'expired');
            expect(expiredGrants.map((grant) => grant.key).sort()).toEqual([...ended].sort());
            expect(expiries.map((row) => row.key).sort()).toEqual(
              expiredGrants.map((grant) => `expiry:grant:${grant.id}`).sort(),
            );
            expect(expiries.every((row) => row.delta === -fixture.terms.credits)).toBe(true);
            const periodsKept = fixture.terms.rollover ? spec.periods : 1;
            expect(await checkedBalance(h, fixture.account.id)).toBe(periodsKept * fixture.terms.credits);
          });
        }

        const order = events
          .map((event, index) => ({ event, index, rank: delivery.ranks[index % 40] ?? 0 }))
          .sort((a, b) => a.rank - b.rank);
        const started = new Set<string>();
        await Promise.all(
          order.flatMap(({ event, index }) =>
            Array.from({ length: delivery.twice[index % 40] ? 2 : 1 }, async () => {
              await sleep(delivery.delaysMs[index % 40] ?? 0);
              const answer = await h.deliver(event);
              expect(answer.status).toBe(200);
              if (answer.body.workflowId) started.add(answer.body.workflowId as string);
            }),
          ),
        );
        await Promise.all([...started].map((id) => h.temporal.workflow.getHandle(id).result()));
        // Twice: the second run must find nothing left to expire.
        await runMaintenance(h);
        await runMaintenance(h);
        for (const check of checks) await check();
      }),
      { numRuns: 10 },
    );
  });

  /** A pack purchase whose checkout event joins the shuffled events. */
  async function fixturePurchase(pack: keyof typeof PACKS, events: StripeEvent[]) {
    const purchase = await grantedPurchase(h, pack, { deliver: false });
    events.push(stripeEvent('checkout.session.completed', purchase.session));
    return purchase;
  }
});
