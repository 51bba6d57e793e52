import type { GrantCategory, GrantSource } from '../domain/credit-grant-rules';
import { formatMoney } from './receipt';

/**
 * Notices other than receipts, rendered when the change they report commits, queued in the
 * outbox under a key that makes each one go out once, and delivered like receipts.
 */

export interface RenderedEmail {
  subject: string;
  text: string;
}

export const emailKeys = {
  /** A grant's receipt, keyed by its purchase: a checkout session or an invoice. */
  receipt: (purchaseId: string) => `receipt:${purchaseId}`,
  dunning: (invoiceId: string) => `dunning:${invoiceId}`,
  subscriptionEnded: (subscriptionId: string) => `subscription-ended:${subscriptionId}`,
  checkoutPaymentFailed: (checkoutSessionId: string) => `payment-failed:${checkoutSessionId}`,
  /** The n-th low-balance notice of an account (one per crossing of its threshold). */
  lowBalance: (accountId: string, n: number) => `low-balance:${accountId}:${n}`,
  topupFailed: (topupId: string) => `topup-failed:${topupId}`,
  /** A grant's expiry notice: one per grant, whenever and however often the sweep runs. */
  expiryNotice: (grantId: number) => `expiry-notice:${grantId}`,
  /** The decline of a top-up first told "not finished" because Stripe could not say what became of it. */
  topupDeclinedLate: (topupId: string) => `topup-declined:${topupId}`,
};

const date = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString().slice(0, 10);

export function renderDunningEmail(facts: {
  planName: string | null;
  amountDueCents: number;
  currency: string;
  nextPaymentAttempt: number | null;
  hostedInvoiceUrl: string | null;
  reference: string;
}): RenderedEmail {
  const what = facts.planName ? `your ${facts.planName} subscription` : 'your subscription';
  return {
    subject: 'Your payment did not go through',
    text: [
      `We could not collect the payment for ${what}.`,
      ``,
      `Amount due:  ${formatMoney(facts.amountDueCents, facts.currency)}`,
      facts.nextPaymentAttempt === null
        ? `We will not retry automatically.`
        : `Next retry:  ${date(facts.nextPaymentAttempt)}`,
      ...(facts.hostedInvoiceUrl ? [`Pay or update your card: ${facts.hostedInvoiceUrl}`] : []),
      `Reference:   ${facts.reference}`,
    ].join('\n'),
  };
}

export function renderSubscriptionEndedEmail(facts: {
  planName: string | null;
  accountId: string;
  reference: string;
}): RenderedEmail {
  return {
    subject: 'Your subscription has ended',
    text: [
      `${facts.planName ? `Your ${facts.planName} subscription` : 'Your subscription'} has ended.`,
      `No further credits will be added; credits already on the account stay usable.`,
      ``,
      `Account:     ${facts.accountId}`,
      `Reference:   ${facts.reference}`,
    ].join('\n'),
  };
}

export function renderCheckoutPaymentFailedEmail(facts: {
  amountCents: number | null;
  currency: string | null;
  reference: string;
}): RenderedEmail {
  const amount =
    facts.amountCents !== null && facts.currency
      ? ` of ${formatMoney(facts.amountCents, facts.currency)}`
      : '';
  return {
    subject: 'Your payment did not go through',
    text: [
      `Your payment${amount} could not be completed, so no credits were added.`,
      `You can start a new purchase at any time.`,
      ``,
      `Reference:   ${facts.reference}`,
    ].join('\n'),
  };
}

// --- expiry notices ---------------------------------------------------------------------------

const GRANT_ORIGINS: Record<GrantSource, string> = {
  purchase: 'bought',
  subscription: 'from your subscription',
  promotional: 'promotional',
  manual: 'added to your account',
  migration: 'carried over',
  // Holds usage's debt, never credits to spend: no notice names it, but the table is total.
  overdraft: 'owed from usage',
};

/** An instant as the notice writes it: to the minute, in UTC. */
const utcMinute = (at: Date) => `${at.toISOString().slice(0, 10)} at ${at.toISOString().slice(11, 16)} UTC`;

export function renderCreditExpiryEmail(facts: {
  accountId: string;
  grantId: number;
  credits: number;
  expiresAt: Date;
  source: GrantSource;
  category: GrantCategory;
}): RenderedEmail {
  const credits = facts.credits.toLocaleString('en-US');
  const kind = facts.category === 'promotional' ? 'promotional' : GRANT_ORIGINS[facts.source];
  return {
    subject: `${credits} credits expire on ${facts.expiresAt.toISOString().slice(0, 10)} (UTC)`,
    text: [
      `${credits} unused credits on your account expire on ${utcMinute(facts.expiresAt)}.`,
      `Credits not spent by then are removed from your balance.`,
      ``,
      `Credits:     ${credits} (${kind})`,
      `Expire:      ${utcMinute(facts.expiresAt)}`,
      `Account:     ${facts.accountId}`,
      `Reference:   grant ${facts.grantId}`,
    ].join('\n'),
  };
}
