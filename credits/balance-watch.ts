import { SPENDING_KINDS } from '../domain/credit-grant-rules';
import { toSafeInteger } from '../domain/integers';
import type { Queryable } from '../db/client';
import { recordLowBalanceCrossing, recordTopupCrossing } from './follow-ups';

/**
 * The balance watch: whether a credit movement took an account's available balance (balance −
 * held) across one of its thresholds. It runs inside the movement's transaction, under the
 * account's lock, so that whatever number of movements race, each crossing is seen by exactly
 * one of them; what a crossing causes is written in that same transaction (credits/follow-ups.ts).
 *
 * The low-balance threshold notices every downward crossing. An automatic top-up charges the
 * customer's card, so it opens only on a movement that spends (SPENDING_KINDS: a debit or
 * capture, usage, an expiry) and leaves the balance below its threshold while armed, whether it
 * crossed just now or was below already (settings saved while below, a month whose cap was
 * reached). Any other movement (a grant, a purchase, a refund, a dispute, a void) only re-arms it
 * when the balance is back at or above the threshold, and never charges.
 */

/** Whether a movement of this ledger kind may open an automatic top-up. */
export const spends = (kind: string): boolean => SPENDING_KINDS.includes(kind);

interface Flip {
  kind: 'low' | 'topup';
  account_id: string;
  armed: boolean;
  threshold: string;
  available: string;
  notices: string;
  auto_topup: boolean;
}

/**
 * Called once the balances have moved, for every account the movement touched. Flips the armed
 * state of their low-balance and top-up thresholds as described above, and records the notice or
 * the top-up of each downward crossing. One statement when nothing crosses. Answers the accounts
 * for which it recorded a follow-up (work to start after the commit).
 */
export async function watchBalances(
  tx: Queryable,
  accountIds: readonly string[],
  movement: { spending: boolean },
): Promise<string[]> {
  if (accountIds.length === 0) return [];
  const flips = await tx<Flip[]>`
    WITH b AS (
      SELECT account_id, balance - held AS available FROM credit_balances
      WHERE account_id = ANY (${accountIds as string[]}::text[])
    ),
    low AS (
      UPDATE low_balance_settings s
      SET armed = NOT s.armed,
          notices = s.notices + CASE WHEN s.armed THEN 1 ELSE 0 END,
          last_notice_at = CASE WHEN s.armed THEN now() ELSE s.last_notice_at END,
          updated_at = now()
      FROM b
      WHERE s.account_id = b.account_id AND s.armed <> (b.available >= s.threshold)
      RETURNING s.account_id, s.armed, s.threshold, s.notices, b.available
    ),
    top AS (
      UPDATE topup_settings t SET armed = NOT t.armed, updated_at = now()
      FROM b
      WHERE t.account_id = b.account_id AND t.enabled
        AND CASE WHEN t.armed THEN ${movement.spending} AND b.available < t.threshold
                 ELSE b.available >= t.threshold END
      RETURNING t.account_id, t.armed, t.threshold, b.available
    )
    SELECT 'low' AS kind, account_id, armed, threshold::text, available::text, notices::text,
           COALESCE((SELECT enabled FROM topup_settings x WHERE x.account_id = low.account_id), false) AS auto_topup
    FROM low
    UNION ALL
    SELECT 'topup' AS kind, account_id, armed, threshold::text, available::text, '0', true FROM top`;
  const followed = new Set<string>();
  for (const flip of flips) {
    if (flip.armed) continue; // back at or above the threshold: re-armed, nothing to send
    if (flip.kind === 'low') {
      await recordLowBalanceCrossing(tx, flip.account_id, {
        notice: toSafeInteger(flip.notices, 'notices'),
        available: toSafeInteger(flip.available, 'available'),
        threshold: toSafeInteger(flip.threshold, 'threshold'),
        autoTopup: flip.auto_topup,
      });
      followed.add(flip.account_id);
    } else if (await recordTopupCrossing(tx, flip.account_id)) {
      followed.add(flip.account_id);
    }
  }
  return [...followed];
}

/** `watchBalances` for one account, after a movement of this ledger kind. */
export async function watchBalance(tx: Queryable, accountId: string, kind: string): Promise<boolean> {
  return (await watchBalances(tx, [accountId], { spending: spends(kind) })).length > 0;
}
