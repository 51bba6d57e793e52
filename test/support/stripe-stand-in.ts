/**
 * The stateful Stripe stand-in is part of the dev tooling (`npm run dev` runs it as its local
 * Stripe); the tests use the same one, from here or from scripts/local-stripe/.
 */
export {
  StripeStandIn,
  type OffSessionOutcome,
  type ReceivedRequest,
} from '../../scripts/local-stripe/stand-in';
