import { log } from '@temporalio/activity';
import { findPack } from '../../db/catalog/packs';
import { findCheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import { findAccount } from '../../credits/index';
import {
  grantPurchaseCredits,
  grantRefusalOf,
  isGrantRefusal,
  recordRefusedApproval,
  type GrantRefusal,
} from '../../db/purchases/grants';
import type {
  CheckedPurchase,
  GrantOutcome,
  PurchaseGrant,
  PurchaseValidation,
} from '../../workflows/purchases/contract';
import { checkoutPurchaseFacts, findPurchase, recordPurchase } from '../../db/purchases/purchases';
import { recordReviewDecision, type ReviewDecisionRecord } from '../../db/audit/audit-log';
import {
  buyerOf,
  checkCheckoutPurchase,
  HOLD_REASONS,
  offerFromPack,
  purchaseGrantFor,
  type HoldReasonCode,
  type Offer,
} from '../../domain/purchase-rules';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import { recordsFirst } from '../business-metrics';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';

/** The hold a refused grant puts a purchase in, so an operator can decide on it. */
const REFUSAL_HOLDS: Record<GrantRefusal['refusal']['code'], HoldReasonCode> = {
  balance_out_of_range: 'balance_out_of_range',
  account_not_found: 'account_unknown',
};

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
      buyer,
    };
  }

  /**
   * The grant, for a valid purchase or a reviewer's approval (`review`: its audit row commits
   * with the grant). A grant the ledger refuses (the balance would pass 2^53 − 1) is answered,
   * not thrown: an approval's attempt is audited and the purchase stays held; a purchase that
   * passed its checks is held for review with the reason, so money taken is never lost from view.
   */
  async function grantPurchase(
    grant: PurchaseGrant,
    review: ReviewDecisionRecord | null = null,
  ): Promise<GrantOutcome | GrantRefusal> {
    const first = metrics ? await recordsFirst(sql, grant.checkoutSessionId) : false;
    let outcome: GrantOutcome;
    try {
      outcome = await grantPurchaseCredits(sql, grant, review);
    } catch (error) {
      const refusal = grantRefusalOf(error);
      if (refusal === null) throw error;
      log.warn('grant refused by the ledger', {
        checkoutSessionId: grant.checkoutSessionId,
        code: refusal.code,
        review: review !== null,
      });
      if (review !== null) return recordRefusedApproval(sql, review, refusal);
      const reasonCode = REFUSAL_HOLDS[refusal.code];
      await recordPurchase(sql, {
        id: grant.checkoutSessionId,
        accountId: refusal.code === 'account_not_found' ? null : grant.accountId,
        packId: grant.packId,
        credits: grant.credits,
        amountCents: grant.amountCents,
        currency: grant.currency,
        livemode: grant.livemode,
        paymentIntentId: grant.paymentIntentId,
        status: 'held_for_review',
        reasonCode,
        reason: HOLD_REASONS[reasonCode],
        workflowId: grant.workflowId,
      });
      return { refusal, auditId: null };
    }
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
      if (validation.outcome !== 'valid') return { validation, granted: null };
      const granted = await grantPurchase(validation.grant);
      if (!isGrantRefusal(granted)) return { validation, granted };
      // Held (and recorded so) by the grant: the reviewer sees what it would grant, and to whom.
      const reasonCode = REFUSAL_HOLDS[granted.refusal.code];
      return {
        validation: {
          outcome: 'held',
          reasonCode,
          reason: HOLD_REASONS[reasonCode],
          proposal: validation.grant,
          buyer: validation.grant.accountId,
        },
        granted: null,
      };
    },

    /**
     * Records a purchase that ends without credits (rejected or never reviewed); a rejection's
     * audit row (`review`) in the same transaction. Answers the audit entry, if any.
     */
    async closePurchase(input: {
      session: CheckoutSessionSummary;
      workflowId: string;
      status: 'rejected' | 'review_expired';
      reasonCode: string | null;
      reason: string;
      /** The buyer, as the check found it (absent for runs started before it said). */
      accountId?: string | null;
      review?: ReviewDecisionRecord | null;
    }): Promise<{ auditId: number | null }> {
      const { review = null } = input;
      return sql.begin(async (tx) => {
        await recordPurchase(tx, {
          ...checkoutPurchaseFacts(input.session),
          accountId: input.accountId === undefined ? input.session.accountId : input.accountId,
          credits: null,
          status: input.status,
          reasonCode: input.reasonCode,
          reason: input.reason,
          workflowId: input.workflowId,
        });
        if (review === null) return { auditId: null };
        const auditId = await recordReviewDecision(tx, review, {
          applied: true,
          stage: input.status,
          granted: null,
          ledgerEntryId: null,
          reasonCode: null,
          reason: input.reason,
        });
        return { auditId };
      });
    },
  };
}
