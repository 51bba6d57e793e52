import { toSafeInteger } from '../../domain/integers';
import type { Queryable, Sql } from '../client';
import { countLowBalanceNotices, lockAccountBalance } from '../../credits/index';

/**
 * The low-balance threshold of an account, as its owner sets it. The credit engine flips `armed`
 * (and counts the notice) in the movement that crosses it (credits/balance-watch.ts); the notice
 * itself is queued and delivered by the low-balance notice workflow.
 */

export interface LowBalanceSettings {
  accountId: string;
  threshold: number;
  /** True while the available balance is at or above the threshold: the next crossing notifies. */
  armed: boolean;
  notices: number;
  lastNoticeAt: Date | null;
}

interface LowBalanceRow {
  account_id: string;
  threshold: string;
  armed: boolean;
  notices: string;
  last_notice_at: Date | null;
}

const toLowBalance = (row: LowBalanceRow): LowBalanceSettings => ({
  accountId: row.account_id,
  threshold: toSafeInteger(row.threshold, 'threshold'),
  armed: row.armed,
  notices: toSafeInteger(row.notices, 'notices'),
  lastNoticeAt: row.last_notice_at,
});

export async function findLowBalanceSettings(
  sql: Queryable,
  accountId: string,
): Promise<LowBalanceSettings | null> {
  const [row] = await sql<LowBalanceRow[]>`
    SELECT account_id, threshold, armed, notices, last_notice_at
    FROM low_balance_settings WHERE account_id = ${accountId}`;
  return row ? toLowBalance(row) : null;
}

/**
 * Sets the threshold. Under the account's lock, it is armed if the balance is at or above it now;
 * an account already below it is not notified until it has been back above it.
 */
export async function saveLowBalanceSettings(
  sql: Sql,
  accountId: string,
  threshold: number,
): Promise<LowBalanceSettings> {
  return sql.begin(async (tx) => {
    const { balance, held } = await lockAccountBalance(tx, accountId);
    // Counted on from the notices of a threshold deleted before: each notice's key is its number.
    const notices = await countLowBalanceNotices(tx, accountId);
    const [row] = await tx<LowBalanceRow[]>`
      INSERT INTO low_balance_settings (account_id, threshold, armed, notices)
      VALUES (${accountId}, ${threshold}, ${balance - held >= threshold}, ${notices})
      ON CONFLICT (account_id) DO UPDATE
        SET threshold = EXCLUDED.threshold, armed = EXCLUDED.armed, updated_at = now()
      RETURNING account_id, threshold, armed, notices, last_notice_at`;
    if (!row) throw new Error(`low-balance settings of ${accountId} were not saved`);
    return toLowBalance(row);
  });
}

export async function deleteLowBalanceSettings(sql: Sql, accountId: string): Promise<boolean> {
  const deleted = await sql`DELETE FROM low_balance_settings WHERE account_id = ${accountId} RETURNING 1`;
  return deleted.length > 0;
}
