import type { InvoiceSummary } from '../stripe/billing-objects';

/**
 * The rules of subscriptions, shared by the workflows and the activities: which state of a
 * subscription is the newest, which paid invoice grants a period's credits, and how many unused
 * period credits expire at renewal when a plan does not roll them over.
 */

/** A plan of config/catalog/plans.json, as the rules need it. */
export interface PlanTerms {
  id: string;
  name: string;
  stripePriceId: string;
  creditsPerPeriod: number;
  /** Whether unused period credits stay after the period ends (else they expire at renewal). */
  rollover: boolean;
}

/** Stripe never brings these back: a later event cannot revive them. */
export const FINAL_SUBSCRIPTION_STATUSES: ReadonlySet<string> = new Set(['canceled', 'incomplete_expired']);

export interface SubscriptionStateVersion {
  status: string | null;
  /** `created` of the event that carried this state (Unix seconds); null if none was applied. */
  eventCreated: number | null;
}

/**
 * Newest state wins: a state carried by an older event never replaces one from a newer event.
 * Stripe's event timestamps have one-second resolution, so on a tie a final state (the
 * subscription ended) wins, and otherwise the state already stored stays. A final state is
 * never replaced.
 */
export function isNewerSubscriptionState(
  stored: SubscriptionStateVersion,
  incoming: SubscriptionStateVersion & { eventCreated: number },
): boolean {
  if (stored.eventCreated === null) return true;
  if (stored.status !== null && FINAL_SUBSCRIPTION_STATUSES.has(stored.status)) return false;
  if (incoming.eventCreated !== stored.eventCreated) return incoming.eventCreated > stored.eventCreated;
  return incoming.status !== null && FINAL_SUBSCRIPTION_STATUSES.has(incoming.status);
}

/** Invoices that open a billing period; the others (prorations, one-offs) grant no credits. */
const PERIOD_BILLING_REASONS: ReadonlySet<string> = new Set(['subscription_create', 'subscription_cycle']);

export const INVOICE_HOLD_REASONS = {
  livemode_mismatch: 'the event livemode differs from the configured Stripe mode',
  plan_unknown: 'the price the invoice bills is not a plan of the catalog',
  subscription_unlinked: 'no checkout session linked the subscription to an account in time',
  balance_out_of_range: 'the grant would take the balance past 2^53 − 1 credits, which the ledger refuses',
} as const;

export type InvoiceHoldCode = keyof typeof INVOICE_HOLD_REASONS;

/** An operator's approval of a held invoice: credits are needed only when the plan is unknown. */
export interface InvoiceApproval {
  reviewer: string;
  credits?: number;
}

export type InvoiceCheck =
  | { kind: 'grant'; accountId: string; credits: number; plan: PlanTerms | null }
  | { kind: 'no_grant'; reason: string }
  | { kind: 'await_link' }
  | { kind: 'hold'; code: InvoiceHoldCode; reason: string };

/**
 * Which credits a paid invoice grants. Credits always come from the catalog plan of the price
 * the invoice bills, never from the amount: coupons, taxes, trials and prorations make the
 * total legitimately differ from the list price.
 */
export function checkInvoicePayment(input: {
  invoice: InvoiceSummary;
  plan: PlanTerms | null;
  /** The account the subscription is linked to, if linked yet. */
  accountId: string | null;
  expectedLivemode: boolean;
  approval?: InvoiceApproval | null;
}): InvoiceCheck {
  const { invoice, plan, approval } = input;
  if (!invoice.subscriptionId) return { kind: 'no_grant', reason: 'not a subscription invoice' };
  if (!invoice.billingReason || !PERIOD_BILLING_REASONS.has(invoice.billingReason)) {
    return {
      kind: 'no_grant',
      reason: `billing reason ${String(invoice.billingReason)} opens no period; credits come with the period's invoice`,
    };
  }
  if (invoice.livemode !== input.expectedLivemode && !approval) return hold('livemode_mismatch');
  if (!input.accountId) return { kind: 'await_link' };
  const credits = plan?.creditsPerPeriod ?? approval?.credits;
  if (credits === undefined || !Number.isSafeInteger(credits) || credits <= 0) {
    return hold('plan_unknown', `price ${String(invoice.priceId)}`);
  }
  return { kind: 'grant', accountId: input.accountId, credits, plan };
}

function hold(code: InvoiceHoldCode, detail?: string): InvoiceCheck {
  const reason = INVOICE_HOLD_REASONS[code];
  return { kind: 'hold', code, reason: detail ? `${reason} (${detail})` : reason };
}

/**
 * Credits of an ended period that expire when its plan does not roll them over. Period credits
 * are taken to be spent first, so what is unused is the grant less what was spent since it;
 * and expiry never takes more than the balance holds, so credits bought with packs (and a
 * balance already below zero) are left alone.
 */
export function periodCreditsToExpire(input: {
  granted: number;
  spentSinceGrant: number;
  balance: number;
}): number {
  const unused = Math.max(0, input.granted - input.spentSinceGrant);
  return Math.min(unused, Math.max(0, input.balance));
}
