import type Stripe from 'stripe';

/** One page of Stripe's events, as reconciliation and the backfill command read them. */
export interface StripeEventQuery {
  /** At most 20 event types per request, Stripe's limit. */
  types: string[];
  fromSeconds: number;
  untilSeconds: number;
  /** The last event of the previous page (older ones follow), or null for the first page. */
  startingAfter: string | null;
  /** 1 to 100. */
  limit: number;
}

/** `GET /v1/events`: newest first, `created[gte]` ≤ created < `created[lt]`, `types[]`. */
export function eventListQuery(query: StripeEventQuery): Stripe.EventListParams {
  return {
    types: query.types,
    created: { gte: query.fromSeconds, lt: query.untilSeconds },
    limit: query.limit,
    ...(query.startingAfter ? { starting_after: query.startingAfter } : {}),
  };
}

export function listStripeEvents(
  stripe: Stripe,
  query: StripeEventQuery,
): Promise<Stripe.ApiList<Stripe.Event>> {
  return stripe.events.list(eventListQuery(query));
}
