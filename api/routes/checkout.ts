import { createHash } from 'node:crypto';
import Stripe from 'stripe';
import type { ApiConfig } from '../../config/env';
import { findAccount, accountScopedKey } from '../../credits/index';
import { priceSale } from '../../db/catalog/packs';
import {
  findCheckoutByIdempotencyKey,
  nextCheckoutRequestNumber,
  saveCheckoutSnapshot,
  type CheckoutSnapshot,
} from '../../db/purchases/checkout-sessions';
import type { Sql } from '../../db/client';
import { errors } from '../errors';
import { createCreditsCheckoutSession } from '../../stripe/checkout-sessions';
import { ensureStripeCustomer } from './topup-customers';

export interface CheckoutDependencies {
  sql: Sql;
  stripe: Stripe | null;
  config: Pick<ApiConfig, 'nodeEnv' | 'checkoutAllowedRedirectHosts' | 'customCredits'>;
}

/** What a client asks to sell (api/routes/purchases.ts validates it). */
export interface CheckoutRequest {
  accountId: string;
  packId?: string | undefined;
  credits?: number | undefined;
  successUrl: string;
  cancelUrl: string;
  savePaymentMethod?: boolean | undefined;
}

/**
 * A Stripe Checkout Session for a pack or a number of credits, priced by the server, once per
 * Idempotency-Key: the same key with the same request answers the session it made (a replay),
 * with another request a conflict. Nothing is stored as sold when Stripe did not create the session.
 */
export async function openCheckoutSession(
  { sql, stripe, config }: CheckoutDependencies,
  body: CheckoutRequest,
  idempotencyKey: string | undefined,
): Promise<{ snapshot: CheckoutSnapshot; replayed: boolean }> {
  const allowedHosts = new Set(config.checkoutAllowedRedirectHosts.map((host) => host.toLowerCase()));

  // Customers are sent back only to the client's own sites, never to a URL an attacker chose.
  function assertRedirectAllowed(field: string, value: string): void {
    const url = new URL(value);
    const hostAllowed =
      allowedHosts.has(url.host.toLowerCase()) || allowedHosts.has(url.hostname.toLowerCase());
    const schemeAllowed = url.protocol === 'https:' || config.nodeEnv !== 'production';
    if (!hostAllowed || !schemeAllowed) throw errors.redirectNotAllowed(field, url.host);
  }

  assertRedirectAllowed('successUrl', body.successUrl);
  assertRedirectAllowed('cancelUrl', body.cancelUrl);
  if (!stripe) throw errors.stripeNotConfigured();

  const account = await findAccount(sql, body.accountId);
  if (!account) throw errors.accountNotFound(body.accountId);

  const sale = await priceSale(sql, body, config.customCredits);

  const fingerprint = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  // Scoped to the account without ambiguity: no (account, key) pair spells another pair's key.
  const scopedKey = idempotencyKey ? accountScopedKey('checkout', account.id, idempotencyKey) : null;
  if (scopedKey) {
    const earlier = await findCheckoutByIdempotencyKey(sql, scopedKey);
    if (earlier && earlier.requestFingerprint !== fingerprint) {
      throw errors.idempotencyKeyReused({
        made: `checkout session ${earlier.id} (${earlier.credits} credits for ${earlier.amountCents} ${earlier.currency})`,
        details: {
          checkoutSessionId: earlier.id,
          credits: earlier.credits,
          amountCents: earlier.amountCents,
          currency: earlier.currency,
        },
      });
    }
    if (earlier) return { snapshot: earlier, replayed: true };
  }
  // Derived from our own IDs, never a clock or a random number, so a retry is the same request.
  const saleKey = scopedKey ?? `checkout:request-${await nextCheckoutRequestNumber(sql)}`;

  const customerId = body.savePaymentMethod
    ? await ensureStripeCustomer(sql, stripe, account)
    : account.stripeCustomerId;
  let session: Stripe.Checkout.Session;
  try {
    session = await createCreditsCheckoutSession(stripe, {
      accountId: account.id,
      packId: sale.packId,
      credits: sale.credits,
      amountCents: sale.amountCents,
      currency: sale.currency,
      productName: sale.name,
      payer: customerId ? { customerId } : { email: account.email },
      saveCard: body.savePaymentMethod ?? false,
      successUrl: body.successUrl,
      cancelUrl: body.cancelUrl,
      idempotencyKey: saleKey,
    });
  } catch (error) {
    // Nothing is stored as sold when Stripe did not create the session.
    if (error instanceof Stripe.errors.StripeError) throw errors.stripeFailed(error.code, error.message);
    throw error;
  }

  const snapshot = await saveCheckoutSnapshot(sql, {
    id: session.id,
    accountId: account.id,
    packId: sale.packId,
    credits: sale.credits,
    amountCents: sale.amountCents,
    currency: sale.currency,
    url: session.url,
    idempotencyKey: scopedKey,
    requestFingerprint: fingerprint,
  });
  return { snapshot, replayed: false };
}
