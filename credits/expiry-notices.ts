import type { Queryable } from '../db/client';
import { outboundEventId, queueOutboundEvent } from '../db/outbound-webhooks/events';
import type { GrantCategory, GrantSource } from '../domain/credit-grant-rules';
import { toSafeInteger } from '../domain/integers';
import { findGrant } from './grants';
import { lockAccountBalance } from './ledger';

/**
 * Expiry notices: before a grant with credits left expires, its account is told once. The engine
 * decides which grants are due and records the notice on the grant (`expiry_notice_at`) with its
 * `credits.expiring` event, under the grant's row lock; the caller writes whatever else the
 * notice causes (the email) in the same transaction. Once recorded, a grant is never noticed
 * again, so overlapping sweeps, retries and restarts notify it once.
 */

/** What a notice says: which grant, how many of its credits expire, and when. */
export interface ExpiryNoticeFacts {
  grantId: number;
  accountId: string;
  /** What remains of the grant when the notice is recorded: what will expire unless spent. */
  credits: number;
  expiresAt: Date;
  source: GrantSource;
  category: GrantCategory;
  /** The business key of the movement that created the grant (a purchase, an invoice…). */
  reference: string;
}

/** The business key of a grant's expiry notice; its outbound event's ID is made from it. */
export const expiryNoticeKey = (grantId: number) => `expiry-notice:grant:${grantId}`;

// Due: open, credits left, not noticed yet, and expiring within the notice window but not yet.
// A grant spent to zero, voided or expired (or past its time, awaiting the expiry sweep) is not.
const due = (q: Queryable, aheadSeconds: number) => q`
  closed_at IS NULL AND expiry_notice_at IS NULL AND has_credits
  AND expires_at > now() AND expires_at <= now() + make_interval(secs => ${aheadSeconds})`;

/**
 * Grants whose notice is due: their expiry falls within `aheadSeconds` from now (the database's
 * clock), soonest expiry first, at most `limit`; of `accountIds` only, when given. A grant created
 * already inside the window is due at once.
 */
export async function findGrantsDueForExpiryNotice(
  sql: Queryable,
  scope: { aheadSeconds: number; limit: number; accountIds?: string[] },
): Promise<number[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT id FROM credit_grants
    WHERE ${due(sql, scope.aheadSeconds)}
      ${scope.accountIds ? sql`AND account_id = ANY (${scope.accountIds})` : sql``}
    ORDER BY expires_at, id LIMIT ${scope.limit}`;
  return rows.map((row) => toSafeInteger(row.id, 'grant id'));
}

/**
 * Records the grant's expiry notice and queues its `credits.expiring` event in the caller's
 * transaction, if the notice is still due; answers what the notice says, or null when it is not
 * due (noticed already, spent, closed, expired, or outside the window). Takes the account's
 * balance lock, then the grant's row lock (the conditional update), as every grant change does.
 */
export async function recordExpiryNotice(
  tx: Queryable,
  grantId: number,
  window: { aheadSeconds: number },
): Promise<ExpiryNoticeFacts | null> {
  const found = await findGrant(tx, grantId);
  if (!found) return null;
  await lockAccountBalance(tx, found.accountId);
  const [row] = await tx<
    {
      account_id: string;
      remaining: string;
      expires_at: Date;
      source: GrantSource;
      category: GrantCategory;
      business_key: string;
    }[]
  >`
    UPDATE credit_grants SET expiry_notice_at = now()
    WHERE id = ${grantId} AND ${due(tx, window.aheadSeconds)}
    RETURNING account_id, remaining, expires_at, source, category, business_key`;
  if (!row) return null;
  const notice: ExpiryNoticeFacts = {
    grantId,
    accountId: row.account_id,
    credits: toSafeInteger(row.remaining, 'remaining'),
    expiresAt: row.expires_at,
    source: row.source,
    category: row.category,
    reference: row.business_key,
  };
  await queueOutboundEvent(tx, {
    id: outboundEventId('credits.expiring', expiryNoticeKey(grantId)),
    type: 'credits.expiring',
    accountId: notice.accountId,
    data: {
      grant_id: notice.grantId,
      credits: notice.credits,
      expires_at: notice.expiresAt.toISOString(),
      source: notice.source,
      category: notice.category,
      reference: notice.reference,
    },
  });
  return notice;
}
