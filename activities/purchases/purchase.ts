import { log } from '@temporalio/activity';
import { findPack } from '../../db/catalog/packs';
import { findCheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import { findAccount } from '../../credits/index';
import { grantPurchaseCredits } from '../../db/purchases/grants';
import type {
  CheckedPurchase,
  GrantOutcome,
  PurchaseGrant,
  PurchaseValidation,
} from '../../workflows/purchases/contract';
import { checkoutPurchaseFacts, findPurchase, recordPurchase } from '../../db/purchases/purchases';
import {
  buyerOf,
  checkCheckoutPurchase,
  offerFromPack,
  purchaseGrantFor,
  type Offer,
} from '../../domain/purchase-rules';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import { recordsFirst } from '../business-metrics';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';

/** What the purchase activities use: the database, the Stripe mode to expect, and the counters. */
export type PurchaseActivityDependencies = Pick<ActivityDependencies, 'sql' | 'metrics'> & {
  config: Pick<ActivityConfig, 'stripe'>;
};

/** Activities of the checkout purchase workflow. */
export function createPurchaseActivities<D extends PurchaseActivityDependencies>({
  sql,
  config,
  metrics,
}: D) {
  /** The snapshot taken when the session was sold comes first; the catalog is the fallback. */
  async function findOffer(session: CheckoutSessionSummary): Promise<Offer | null> {
    const snapshot = await findCheckoutSnapshot(sql, session.id);
    if (snapshot) {
      const pack = snapshot.packId ? await findPack(sql, snapshot.packId) : null;
      return {
        packId: snapshot.packId,
        name: pack?.name ?? `${snapshot.credits.toLocaleString('en-US')} credits`,
        credits: snapshot.credits,
        priceCents: snapshot.amountCents,
        currency: snapshot.currency,
        soldTo: snapshot.accountId,
      };
    }
    const pack = session.packId ? await findPack(sql, session.packId) : null;
    return pack ? offerFromPack(pack) : null;
  }

  /** Checks the session against the catalog and the account; records anything that does not grant. */
  async function validatePurchase(input: {
    session: CheckoutSessionSummary;
    workflowId: string;
  }): Promise<PurchaseValidation> {
    const { session, workflowId } = input;
    const existing = await findPurchase(sql, session.id);
    if (existing?.status === 'completed' && existing.workflowId !== workflowId) {
      return { outcome: 'already_granted', ledgerEntryId: existing.ledgerEntryId };
    }
    const offer = await findOffer(session);
    // Completed by this very workflow: a local activity run again after its workflow task was
    // lost (the worker died after the grant committed). It answers with what was granted, not a
    // new check (the catalog may have changed since, say in the deploy that replaced the worker);
    // the grant that follows finds its own ledger row and answers as it did, so the receipt
    // still goes out.
    if (existing?.status === 'completed' && existing.accountId !== null && existing.credits !== null) {
      const sold = {
        accountId: existing.accountId,
        packId: existing.packId,
        packName: offer?.name ?? `${existing.credits.toLocaleString('en-US')} credits`,
        credits: existing.credits,
      };
      return { outcome: 'valid', grant: purchaseGrantFor(session, sold, workflowId) };
    }
    const buyer = buyerOf(session, offer);
    const account = buyer ? await findAccount(sql, buyer) : null;
    const check = checkCheckoutPurchase({
      session,
      offer,
      accountExists: account !== null,
      expectedLivemode: config.stripe.livemode,
    });
    // What approving (or a valid check) grants: always what the server sold, never metadata.
    const grantOf = (accountId: string, sold: Offer): PurchaseGrant =>
      purchaseGrantFor(session, { accountId, packName: sold.name, ...sold }, workflowId);
    if (check.kind === 'grant') return { outcome: 'valid', grant: grantOf(check.accountId, check.offer) };

    const record = {
      ...checkoutPurchaseFacts(session),
      accountId: account ? buyer : null,
      packId: offer?.packId ?? null,
      credits: offer?.credits ?? null,
      workflowId,
    };
    if (check.kind === 'await_payment') {
      await recordPurchase(sql, { ...record, status: 'awaiting_payment' });
      return { outcome: 'awaiting_payment' };
    }
    const status = await recordPurchase(sql, {
      ...record,
      status: 'held_for_review',
      reasonCode: check.code,
      reason: check.reason,
    });
    if (status === 'completed') return { outcome: 'already_granted', ledgerEntryId: null };
    log.warn('purchase held for review', { checkoutSessionId: session.id, reasonCode: check.code });
    return {
      outcome: 'held',
      reasonCode: check.code,
      reason: check.reason,
      proposal: offer && buyer ? grantOf(buyer, offer) : null,
    };
  }

  async function grantPurchase(grant: PurchaseGrant): Promise<GrantOutcome> {
    const first = metrics ? await recordsFirst(sql, grant.checkoutSessionId) : false;
    const outcome = await grantPurchaseCredits(sql, grant);
    if (first && outcome.applied) metrics?.creditsGranted('purchase', grant.credits);
    log.info(outcome.applied ? 'credits granted' : 'session already credited', {
      checkoutSessionId: grant.checkoutSessionId,
      accountId: grant.accountId,
      credits: grant.credits,
      ledgerEntryId: outcome.ledgerEntryId,
    });
    return outcome;
  }

  return {
    validatePurchase,
    grantPurchase,

    /**
     * Validation, then at once the grant when the purchase is valid: one local activity, so a
     * valid purchase costs its workflow one step. Run again (its workflow task lost after the
     * grant committed), validation passes again and the grant answers as it first did.
     */
    async validateAndGrantPurchase(input: {
      session: CheckoutSessionSummary;
      workflowId: string;
    }): Promise<CheckedPurchase> {
      const validation = await validatePurchase(input);
      const granted = validation.outcome === 'valid' ? await grantPurchase(validation.grant) : null;
      return { validation, granted };
    },

    /** Records a purchase that ends without credits (rejected or never reviewed). */
    async closePurchase(input: {
      session: CheckoutSessionSummary;
      workflowId: string;
      status: 'rejected' | 'review_expired';
      reasonCode: string | null;
      reason: string;
    }): Promise<void> {
      await recordPurchase(sql, {
        ...checkoutPurchaseFacts(input.session),
        accountId: input.session.accountId,
        credits: null,
        status: input.status,
        reasonCode: input.reasonCode,
        reason: input.reason,
        workflowId: input.workflowId,
      });
    },
  };
}
