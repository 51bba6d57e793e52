import Stripe from 'stripe';
import { type Account, accountScopedKey } from '../../credits/index';
import type { Sql } from '../../db/client';
import { rememberStripeCustomer } from '../../db/topups/topups';
import { errors } from '../errors';
import { createAccountCustomer } from '../../stripe/customers';

/**
 * The account's Stripe customer, created the first time a card is to be saved and remembered on
 * the account: the card a Checkout saves (`setup_future_usage: off_session`) is the customer's,
 * and automatic top-ups charge it. The idempotency key is the account's, so two checkouts at
 * once create one customer.
 */
export async function ensureStripeCustomer(sql: Sql, stripe: Stripe, account: Account): Promise<string> {
  if (account.stripeCustomerId) return account.stripeCustomerId;
  const key = accountScopedKey('customer', account.id, 'default');
  let customer: Stripe.Customer;
  try {
    customer = await createAccountCustomer(stripe, {
      accountId: account.id,
      email: account.email,
      idempotencyKey: key,
    });
  } catch (error) {
    if (error instanceof Stripe.errors.StripeError) throw errors.stripeFailed(error.code, error.message);
    throw error;
  }
  return rememberStripeCustomer(sql, account.id, customer.id);
}
