import { Context } from '@temporalio/activity';
import type { Queryable } from '../db/client';
import { findGrant, findEntryByKey } from '../credits/index';
import { findPurchase } from '../db/purchases/purchases';
import type { GrantSource } from '../domain/credit-grant-rules';

/**
 * What the activities count, each business event once; the worker backs it with Prometheus
 * metrics (worker/metrics.ts), a test with a registry of its own.
 */
export interface BusinessMetrics {
  creditsGranted(source: GrantSource, credits: number): void;
  creditsRevoked(source: GrantSource, reason: 'refund' | 'dispute', credits: number): void;
  /** Credits a won dispute gave back. */
  creditsRestored(source: GrantSource, credits: number): void;
  creditsExpired(source: GrantSource, credits: number): void;
  /** An email of the outbox the SMTP server accepted (`key` is its outbox key: `receipt:…`). */
  emailSent(key: string): void;
  /** An email of the outbox recorded as failed for good. */
  emailFailed(key: string): void;
  /** Stripe events reconciliation found that no webhook had delivered (it started their workflows). */
  reconcileMissedEvents(count?: number): void;
}

/**
 * Whether this attempt is the one about to record the movement keyed `businessKey`, asked
 * before the work. A retry answers exactly what the first attempt answered (its completion may
 * have been lost after the commit), so the answer cannot tell them apart: a first attempt
 * records it; a later one only if no earlier attempt committed it. A first attempt asks nothing,
 * so counting costs no query on the usual path. Outside an activity (a direct call) it asks.
 */
export async function recordsFirst(sql: Queryable, businessKey: string): Promise<boolean> {
  let attempt = 2;
  try {
    attempt = Context.current().info.attempt;
  } catch {
    // Not inside an activity: treat as a retry, which asks the ledger.
  }
  if (attempt <= 1) return true;
  return (await findEntryByKey(sql, businessKey)) === null;
}

/** The source of the grant a purchase (a checkout session or an invoice) was credited with. */
export async function purchaseGrantSource(sql: Queryable, purchaseId: string): Promise<GrantSource> {
  const purchase = await findPurchase(sql, purchaseId);
  const grant = purchase?.grantId ? await findGrant(sql, purchase.grantId) : null;
  return grant?.source ?? 'purchase';
}
