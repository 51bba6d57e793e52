/** Stripe's stripe-mock on free ports: started by the dev tooling's local Stripe and by the tests alike. */
export { startStripeMock, type StripeMock } from '../../scripts/local-stripe/stripe-mock';
