import { toSafeInteger } from '../domain/integers';
import type { Queryable } from '../db/client';
import { recordLowBalanceCrossing, recordTopupCrossing } from './follow-ups';

/**
 * The balance watch: whether a credit movement took an account's available balance (balance −
 * held) across one of its thresholds. It runs inside the movement's transaction, under the
 * account's lock, so that whatever number of movements race, each crossing is seen by exactly
 * one of them; what a crossing causes is written in that same transaction (credits/follow-ups.ts).
 */

/**
 * Called by every credit movement once the balance has moved (credits/ledger.ts). Flips the armed
 * state of the account's low-balance and top-up thresholds when the movement crossed them, and
 * on a downward crossing records the notice or the top-up. One statement when nothing is set.
 */
export async function watchBalance(tx: Queryable, accountId: string): Promise<void> {
  const flips = await tx<
    {
      kind: 'low' | 'topup';
      armed: boolean;
      threshold: string;
      available: string;
      notices: string;
      auto_topup: boolean;
    }[]
  >`
    WITH b AS (SELECT balance - held AS available FROM credit_balances WHERE account_id = ${accountId}),
    low AS (
      UPDATE low_balance_settings s
      SET armed = NOT s.armed,
          notices = s.notices + CASE WHEN s.armed THEN 1 ELSE 0 END,
          last_notice_at = CASE WHEN s.armed THEN now() ELSE s.last_notice_at END,
          updated_at = now()
      FROM b
      WHERE s.account_id = ${accountId} AND s.armed <> (b.available >= s.threshold)
      RETURNING s.armed, s.threshold, s.notices, b.available
    ),
    top AS (
      UPDATE topup_settings t SET armed = NOT t.armed, updated_at = now()
      FROM b
      WHERE t.account_id = ${accountId} AND t.enabled AND t.armed <> (b.available >= t.threshold)
      RETURNING t.armed, t.threshold, b.available
    )
    SELECT 'low' AS kind, armed, threshold::text, available::text, notices::text,
           COALESCE((SELECT enabled FROM topup_settings WHERE account_id = ${accountId}), false) AS auto_topup
    FROM low
    UNION ALL
    SELECT 'topup' AS kind, armed, threshold::text, available::text, '0', true FROM top`;
  for (const flip of flips) {
    if (flip.armed) continue; // back at or above the threshold: re-armed, nothing to send
    if (flip.kind === 'low') {
      await recordLowBalanceCrossing(tx, accountId, {
        notice: toSafeInteger(flip.notices, 'notices'),
        available: toSafeInteger(flip.available, 'available'),
        threshold: toSafeInteger(flip.threshold, 'threshold'),
        autoTopup: flip.auto_topup,
      });
    } else {
      await recordTopupCrossing(tx, accountId);
    }
  }
}
