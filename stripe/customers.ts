import type Stripe from 'stripe';
import { stripeIdempotencyKey } from './idempotency-keys';

/** The Stripe customer of one of our accounts: the card a Checkout saves belongs to it. */
export interface AccountCustomer {
  accountId: string;
  email: string;
  /** Our own key, one per account, so that two checkouts at once create one customer. */
  idempotencyKey: string;
}

export function accountCustomerRequest(customer: AccountCustomer): {
  params: Stripe.CustomerCreateParams;
  options: Stripe.RequestOptions;
} {
  return {
    params: { email: customer.email, metadata: { accountId: customer.accountId } },
    options: { idempotencyKey: stripeIdempotencyKey(customer.idempotencyKey) },
  };
}

export function createAccountCustomer(
  stripe: Stripe,
  customer: AccountCustomer,
): Promise<Stripe.Response<Stripe.Customer>> {
  const { params, options } = accountCustomerRequest(customer);
  return stripe.customers.create(params, options);
}
