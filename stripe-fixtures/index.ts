/**
 * Stripe objects and events shaped like the real ones (API version 2025-10-29.clover), signed
 * with the SDK and delivered as Stripe delivers them: the fixtures of the tests, the event sender
 * and the benchmarks. One module per family of objects; this one re-exports them all.
 */
export * from './events';
export * from './checkout-sessions';
export * from './subscriptions';
export * from './charges';
