import type { FeatureCatalog } from '../../db/catalog/features';
import { Random } from './random';
import type { Account } from './workload';

/**
 * The usage stream of the chaos run, fixed by the seed before anything starts: which accounts
 * spend on which features of the catalogue, how much, under which event IDs, and how the events
 * are cut into `POST /v1/usage` batches, some re-sent in a later batch and some batches sent as
 * concurrent bursts.
 *
 * Most events go to accounts of their own, given a promotional grant through the API before any
 * usage is sent: their credits only go down afterwards, so a refusal for insufficient credits can
 * be checked against what they hold at the end. The others go to the purchase accounts, whose
 * credits land while the usage runs (refused before, accepted after, or owed as debt that the
 * purchase then repays).
 */

/** A feature of the catalogue as the plan prices it. */
export interface UsageFeature {
  key: string;
  credits: number;
  units: number;
  overdraft: 'refuse' | 'allow';
  /** An event uses 1 to this many units: up to about four credits' worth, one unit at least. */
  maxQuantity: number;
}

/** One event exactly as sent, at every delivery (another body under the same ID is a conflict). */
export interface UsageEvent {
  id: string;
  accountId: string;
  feature: string;
  quantity: number;
  timestamp?: string;
  properties?: Record<string, unknown>;
}

export interface UsageGrant {
  accountId: string;
  amount: number;
  idempotencyKey: string;
}

/** One request body (indexes into the events), delivered `copies` times at once. */
export interface UsageBatch {
  events: number[];
  copies: number;
}

export interface UsagePlan {
  /** Accounts that only spend (the purchase accounts are the purchase plan's). */
  accounts: Account[];
  grants: UsageGrant[];
  features: UsageFeature[];
  events: UsageEvent[];
  batches: UsageBatch[];
  /** Events sent again in a later batch. */
  resentEvents: number;
  /** Batches delivered as a burst of concurrent copies. */
  concurrentBatches: number;
  /** Event deliveries beyond the first of each event. */
  duplicateDeliveries: number;
}

/** Share of events that go to the purchase accounts rather than to the usage accounts. */
const PURCHASE_ACCOUNT_SHARE = 0.25;
const EVENTS_PER_USAGE_ACCOUNT = 150;
/** A usage account's grant, as a share of what all its events would cost: some run out, some not. */
const GRANT_SHARE = { min: 0.5, max: 1.3 };
const MEAN_BATCH_SIZE = 25;
/** Share of events sent again in one of the next batches. */
const RESENT_SHARE = 0.15;
const RESEND_WITHIN_BATCHES = 8;
/** Share of batches delivered as 2 or 3 concurrent copies. */
const BURST_SHARE = 0.1;
const TIMESTAMP_SHARE = 0.3;
const PROPERTIES_SHARE = 0.3;
/** Timestamps sent with events: in the past, whatever the clock says. */
const TIMESTAMP_BASE_MS = Date.UTC(2024, 0, 1);
const CREDITS_PER_EVENT = 4;

/** Every usage account starts from a grant; the plan checks each is what it says. */
export const USAGE_GRANT_REASON = 'chaos run: credits for the usage stream';

export function usageFeatures(catalog: FeatureCatalog): UsageFeature[] {
  const features = catalog.features
    .filter((feature) => feature.active)
    .map((feature) => ({
      key: feature.key,
      credits: feature.credits,
      units: feature.units,
      overdraft: feature.overdraft,
      maxQuantity: Math.max(1, Math.round((feature.units * CREDITS_PER_EVENT) / feature.credits)),
    }));
  if (features.length === 0) throw new Error('the feature catalog has no active feature');
  return features;
}

/** What `quantity` units of the feature cost, before fractional accrual: q × credits / units. */
const exactCost = (feature: UsageFeature, quantity: number) => (quantity * feature.credits) / feature.units;

export function buildUsagePlan(options: {
  events: number;
  seed: number;
  catalog: FeatureCatalog;
  /** The purchase plan's accounts, which spend what they bought. */
  purchaseAccounts: readonly Account[];
}): UsagePlan {
  const random = new Random(options.seed, 'usage');
  const features = usageFeatures(options.catalog);
  const accounts: Account[] = Array.from(
    { length: Math.max(3, Math.ceil(options.events / EVENTS_PER_USAGE_ACCOUNT)) },
    (_, index) => {
      const id = `chaos_${options.seed}_u${String(index).padStart(4, '0')}`;
      return { id, email: `${id}@chaos.example` };
    },
  );

  // Event IDs count per account: the same ID on two accounts is two events.
  const nextId = new Map<string, number>();
  const cost = new Map<string, number>();
  const events: UsageEvent[] = Array.from({ length: options.events }, (_, index) => {
    const toPurchaseAccount = options.purchaseAccounts.length > 0 && random.chance(PURCHASE_ACCOUNT_SHARE);
    const accountId = random.pick(toPurchaseAccount ? options.purchaseAccounts : accounts).id;
    const feature = random.pick(features);
    const quantity = random.int(1, feature.maxQuantity);
    const n = (nextId.get(accountId) ?? 0) + 1;
    nextId.set(accountId, n);
    cost.set(accountId, (cost.get(accountId) ?? 0) + exactCost(feature, quantity));
    const event: UsageEvent = { id: `ev-${n}`, accountId, feature: feature.key, quantity };
    if (random.chance(TIMESTAMP_SHARE)) {
      event.timestamp = new Date(TIMESTAMP_BASE_MS + index * 37_000).toISOString();
    }
    if (random.chance(PROPERTIES_SHARE)) {
      event.properties = { model: random.pick(['small', 'large']), requestId: `r-${index}` };
    }
    return event;
  });

  const grants: UsageGrant[] = accounts.map((account) => ({
    accountId: account.id,
    amount: Math.max(
      1,
      Math.round((cost.get(account.id) ?? 0) * random.between(GRANT_SHARE.min, GRANT_SHARE.max)),
    ),
    idempotencyKey: `chaos-usage-${account.id}`,
  }));

  // Batches in event order, of 1 to 2 × the mean size.
  const batches: UsageBatch[] = [];
  for (let next = 0; next < events.length;) {
    const size = Math.min(events.length - next, random.int(1, 2 * MEAN_BATCH_SIZE - 1));
    batches.push({ events: Array.from({ length: size }, (_, i) => next + i), copies: 1 });
    next += size;
  }

  // Some events again, in one of the next few batches (never twice in one: that is a 400).
  let resentEvents = 0;
  batches.forEach((batch, batchIndex) => {
    for (const eventIndex of batch.events.slice()) {
      if (batchIndex === batches.length - 1 || !random.chance(RESENT_SHARE)) continue;
      const later = batches[Math.min(batches.length - 1, batchIndex + random.int(1, RESEND_WITHIN_BATCHES))];
      if (!later || later.events.includes(eventIndex)) continue;
      later.events.push(eventIndex);
      resentEvents += 1;
    }
  });
  let concurrentBatches = 0;
  for (const batch of batches) {
    random.shuffle(batch.events);
    if (random.chance(BURST_SHARE)) {
      batch.copies = random.chance(0.3) ? 3 : 2;
      concurrentBatches += 1;
    }
  }
  const deliveries = batches.reduce((total, batch) => total + batch.events.length * batch.copies, 0);

  return {
    accounts,
    grants,
    features,
    events,
    batches,
    resentEvents,
    concurrentBatches,
    duplicateDeliveries: deliveries - events.length,
  };
}
