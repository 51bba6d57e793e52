import { periodCreditsToExpire } from '../domain/subscription-rules';
import { toSafeInteger } from '../domain/integers';
import type { Queryable } from './client';
import { applyCreditMovement } from './ledger';

export const expiryKeyFor = (invoiceId: string) => `expiry:${invoiceId}`;

/**
 * At renewal, the unused credits of every earlier period of the subscription whose plan does
 * not roll them over expire: one ledger row per period, keyed `expiry:<invoice>`, so a period
 * expires once whichever renewal (or late delivery) gets here first. Runs inside the grant's
 * transaction, after the account's balance row has been locked.
 */
export async function expireEndedPeriods(
  tx: Queryable,
  input: { subscriptionId: string; currentPeriodStart: number },
): Promise<number> {
  const due = await tx<
    { invoice_id: string; account_id: string; credits: string; ledger_entry_id: string }[]
  >`
    SELECT invoice_id, account_id, credits, ledger_entry_id FROM subscription_periods
    WHERE subscription_id = ${input.subscriptionId} AND NOT rollover AND NOT expired
      AND period_start < ${input.currentPeriodStart}
    ORDER BY period_start
    FOR UPDATE`;
  let expired = 0;
  for (const period of due) {
    const [usage] = await tx<{ spent: string; balance: string }[]>`
      SELECT COALESCE(-SUM(l.delta) FILTER (WHERE l.kind = 'debit' AND l.id > ${period.ledger_entry_id}), 0) AS spent,
             b.balance
      FROM credit_balances b LEFT JOIN credit_ledger l ON l.account_id = b.account_id
      WHERE b.account_id = ${period.account_id}
      GROUP BY b.balance`;
    const amount = periodCreditsToExpire({
      granted: toSafeInteger(period.credits, 'period credits'),
      spentSinceGrant: toSafeInteger(usage?.spent ?? 0, 'credits spent'),
      balance: toSafeInteger(usage?.balance ?? 0, 'balance'),
    });
    if (amount > 0) {
      await applyCreditMovement(tx, {
        accountId: period.account_id,
        delta: -amount,
        kind: 'expiry',
        businessKey: expiryKeyFor(period.invoice_id),
        reason: `unused credits of the period billed by ${period.invoice_id} (plan without rollover)`,
      });
    }
    await tx`UPDATE subscription_periods SET expired = true WHERE invoice_id = ${period.invoice_id}`;
    expired += amount;
  }
  return expired;
}
