import type { PackCatalog } from '../../db/catalog/packs';
import type { CheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { Random } from './random';

/**
 * What the chaos run sells and sends, fixed by the seed before anything starts: accounts, checkout
 * sessions (what each sold, to whom), the Stripe events that report them, and the order and
 * multiplicity in which those events are delivered.
 */

/** How the events of one session look. */
export type SaleShape =
  /** One paid `checkout.session.completed`. */
  | 'paid'
  /** Two paid `checkout.session.completed` with distinct event IDs: only the ledger key dedupes. */
  | 'paid_twice'
  /** Completed unpaid (a delayed payment method), then `async_payment_succeeded`. */
  | 'delayed';

const SHAPES: ReadonlyArray<{ shape: SaleShape; share: number }> = [
  { shape: 'paid', share: 0.6 },
  { shape: 'paid_twice', share: 0.15 },
  { shape: 'delayed', share: 0.25 },
];

/** Share of events delivered more than once (same event ID), as Stripe's at-least-once does. */
export const DUPLICATE_SHARE = 0.3;
/** Of the duplicated events, the share whose copies arrive at the same moment. */
const CONCURRENT_SHARE = 1 / 3;
/** Of the duplicated events, the share delivered three times rather than twice. */
const TRIPLE_SHARE = 0.1;
/** Share of sessions for a custom number of credits (priced by the snapshot, no pack). */
const CUSTOM_SHARE = 0.2;
/** Share of pack sessions with a snapshot; the others are checked against the catalog. */
const PACK_SNAPSHOT_SHARE = 0.5;
const CUSTOM_UNIT_PRICE_CENTS = 9;
const SESSIONS_PER_ACCOUNT = 8;

export interface Account {
  id: string;
  email: string;
}

export interface Sale {
  sessionId: string;
  accountId: string;
  packId: string | null;
  /** What was sold: exactly what the ledger must grant, once. */
  credits: number;
  amountCents: number;
  currency: string;
  shape: SaleShape;
  /** Stored before the events, as the API stores it when it creates the Stripe session. */
  snapshot: CheckoutSnapshot | null;
}

export interface PlannedEvent {
  id: string;
  type: string;
  saleIndex: number;
  /** The body exactly as delivered; it is signed anew at every attempt, as Stripe does. */
  payload: string;
}

/** One moment of the steady send: `copies` deliveries of one event at once. */
export interface Slot {
  eventIndex: number;
  copies: number;
}

export interface Plan {
  seed: number;
  accounts: Account[];
  sales: Sale[];
  events: PlannedEvent[];
  slots: Slot[];
  /** Deliveries beyond the first of each event. */
  duplicateDeliveries: number;
  duplicatedEvents: number;
  /** Slots that carry more than one copy at once. */
  concurrentBursts: number;
}

function pickShape(random: Random): SaleShape {
  let roll = random.float();
  for (const { shape, share } of SHAPES) {
    roll -= share;
    if (roll < 0) return shape;
  }
  return 'paid';
}

function eventsOf(sale: Sale, saleIndex: number, random: Random): PlannedEvent[] {
  const session = {
    ...checkoutSession({
      id: sale.sessionId,
      accountId: sale.accountId,
      packId: sale.packId,
      amountTotal: sale.amountCents,
      currency: sale.currency,
      paymentStatus: sale.shape === 'delayed' ? 'unpaid' : 'paid',
      customerId: random.stripeId('cus'),
      email: 'payer@chaos.example',
      metadata: { credits: String(sale.credits) },
    }),
    payment_intent: random.stripeId('pi'),
  };
  const event = (type: string, object: Record<string, unknown>): PlannedEvent => {
    const built = stripeEvent(type, object, { id: random.stripeId('evt') });
    return { id: built.id, type, saleIndex, payload: JSON.stringify(built, null, 2) };
  };
  switch (sale.shape) {
    case 'paid':
      return [event('checkout.session.completed', session)];
    case 'paid_twice':
      return [event('checkout.session.completed', session), event('checkout.session.completed', session)];
    case 'delayed':
      return [
        event('checkout.session.completed', session),
        event('checkout.session.async_payment_succeeded', { ...session, payment_status: 'paid' }),
      ];
  }
}

export function buildPlan(options: { events: number; seed: number; catalog: PackCatalog }): Plan {
  const random = new Random(options.seed, 'plan');
  const packs = options.catalog.packs.filter((pack) => pack.active);
  if (packs.length === 0) throw new Error('the pack catalog has no active pack');

  // Sessions first (how many accounts depends on how many sessions the events make).
  const drafts: Array<Omit<Sale, 'accountId' | 'snapshot'> & { withSnapshot: boolean }> = [];
  let eventCount = 0;
  while (eventCount < options.events) {
    let shape = pickShape(random);
    if (shape !== 'paid' && eventCount + 2 > options.events) shape = 'paid';
    eventCount += shape === 'paid' ? 1 : 2;
    const sessionId = random.stripeId('cs_test');
    if (random.chance(CUSTOM_SHARE)) {
      const credits = random.int(2, 60) * 50;
      const amountCents = credits * CUSTOM_UNIT_PRICE_CENTS;
      drafts.push({
        sessionId,
        packId: null,
        credits,
        amountCents,
        currency: 'usd',
        shape,
        withSnapshot: true,
      });
    } else {
      const pack = random.pick(packs);
      drafts.push({
        sessionId,
        packId: pack.id,
        credits: pack.credits,
        amountCents: pack.priceCents,
        currency: pack.currency,
        shape,
        withSnapshot: random.chance(PACK_SNAPSHOT_SHARE),
      });
    }
  }

  const accounts: Account[] = Array.from(
    { length: Math.max(5, Math.ceil(drafts.length / SESSIONS_PER_ACCOUNT)) },
    (_, index) => {
      const id = `chaos_${options.seed}_${String(index).padStart(5, '0')}`;
      return { id, email: `${id}@chaos.example` };
    },
  );

  const sales: Sale[] = drafts.map(({ withSnapshot, ...draft }) => {
    const accountId = random.pick(accounts).id;
    const snapshot: CheckoutSnapshot | null = withSnapshot
      ? {
          id: draft.sessionId,
          accountId,
          packId: draft.packId,
          credits: draft.credits,
          amountCents: draft.amountCents,
          currency: draft.currency,
          url: null,
          idempotencyKey: null,
          requestFingerprint: `chaos:${draft.sessionId}`,
        }
      : null;
    return { ...draft, accountId, snapshot };
  });

  const events = sales.flatMap((sale, index) => eventsOf(sale, index, random));

  // Duplicates: a fixed share of the events, some delivered as a concurrent burst, the others
  // as separate deliveries anywhere in the (shuffled) stream.
  const duplicated = random
    .shuffle(events.map((_, index) => index))
    .slice(0, Math.round(events.length * DUPLICATE_SHARE));
  const extraCopies = new Map<number, number>(
    duplicated.map((index) => [index, random.chance(TRIPLE_SHARE) ? 2 : 1]),
  );
  const slots: Slot[] = [];
  let concurrentBursts = 0;
  events.forEach((_, eventIndex) => {
    const extra = extraCopies.get(eventIndex) ?? 0;
    if (extra > 0 && random.chance(CONCURRENT_SHARE)) {
      slots.push({ eventIndex, copies: 1 + extra });
      concurrentBursts += 1;
    } else {
      for (let copy = 0; copy <= extra; copy += 1) slots.push({ eventIndex, copies: 1 });
    }
  });
  random.shuffle(slots);

  return {
    seed: options.seed,
    accounts,
    sales,
    events,
    slots,
    duplicateDeliveries: [...extraCopies.values()].reduce((sum, extra) => sum + extra, 0),
    duplicatedEvents: extraCopies.size,
    concurrentBursts,
  };
}
