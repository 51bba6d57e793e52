import { loadFeatureCatalog } from '../../db/catalog/features';
import { buildUsagePlan, type UsagePlan } from '../../scripts/chaos/usage-workload';
import type { Account } from '../../scripts/chaos/workload';

const purchaseAccounts: Account[] = Array.from({ length: 40 }, (_, index) => ({
  id: `chaos_1_${String(index).padStart(5, '0')}`,
  email: `buyer-${index}@chaos.example`,
}));
const plan = (seed: number, events = 3000): UsagePlan =>
  buildUsagePlan({ events, seed, catalog: loadFeatureCatalog(), purchaseAccounts });

describe('the chaos run’s usage plan', () => {
  it('when built twice from one seed, then it is the same plan; another seed gives another', () => {
    expect(plan(1)).toEqual(plan(1));
    expect(plan(2).events).not.toEqual(plan(1).events);
  });

  it('when cut into batches, then every event is sent, none twice in one request, and duplicates are counted', () => {
    const usage = plan(1);
    const sent = new Set<number>();
    let deliveries = 0;
    for (const batch of usage.batches) {
      const keys = batch.events.map((index) => {
        const event = usage.events[index];
        return `${event?.accountId} ${event?.id}`;
      });
      expect(new Set(keys).size).toBe(keys.length);
      expect(batch.events.length).toBeLessThanOrEqual(1000);
      for (const index of batch.events) sent.add(index);
      deliveries += batch.events.length * batch.copies;
    }
    expect(sent.size).toBe(usage.events.length);
    expect(usage.duplicateDeliveries).toBe(deliveries - usage.events.length);
    expect(usage.resentEvents).toBeGreaterThan(0);
    expect(usage.concurrentBatches).toBeGreaterThan(0);
  });

  it('when spending, then it uses fractional, refusing and debt-allowing features, on usage and purchase accounts alike', () => {
    const usage = plan(1);
    const used = new Set(usage.events.map((event) => event.feature));
    const usedFeatures = usage.features.filter((feature) => used.has(feature.key));
    expect(usedFeatures.some((feature) => feature.credits % feature.units !== 0)).toBe(true);
    expect(usedFeatures.some((feature) => feature.overdraft === 'refuse')).toBe(true);
    expect(usedFeatures.some((feature) => feature.overdraft === 'allow')).toBe(true);
    const usageAccounts = new Set(usage.accounts.map((account) => account.id));
    expect(usage.events.some((event) => usageAccounts.has(event.accountId))).toBe(true);
    expect(usage.events.some((event) => !usageAccounts.has(event.accountId))).toBe(true);
  });

  it('when granting, then some usage accounts get less than their events cost and some more', () => {
    const usage = plan(1);
    const prices = new Map(usage.features.map((feature) => [feature.key, feature]));
    const cost = new Map<string, number>();
    for (const event of usage.events) {
      const feature = prices.get(event.feature);
      if (!feature) throw new Error(`no feature ${event.feature}`);
      cost.set(
        event.accountId,
        (cost.get(event.accountId) ?? 0) + (event.quantity * feature.credits) / feature.units,
      );
    }
    expect(usage.grants.map((grant) => grant.accountId)).toEqual(usage.accounts.map((account) => account.id));
    expect(usage.grants.some((grant) => grant.amount < (cost.get(grant.accountId) ?? 0))).toBe(true);
    expect(usage.grants.some((grant) => grant.amount > (cost.get(grant.accountId) ?? 0))).toBe(true);
  });
});
