import { emailKeys, renderCheckoutPaymentFailedEmail } from '../../email/templates';
import type { CheckoutSessionSummary } from '../../stripe/objects';
import type { Sql } from '../client';
import { enqueueAccountEmail } from '../email/outbox';
import { checkoutPurchaseFacts, recordPurchase, type PurchaseRecordStatus } from './purchases';

/**
 * A checkout session that will never pay: its delayed payment failed, or it expired. The
 * purchase is marked (a completed one stays completed), and a failed payment is told to the
 * customer once; an expired session is an abandoned cart and is told nothing.
 */
export async function closeCheckoutSession(
  sql: Sql,
  input: { session: CheckoutSessionSummary; status: 'payment_failed' | 'expired'; workflowId: string },
): Promise<{ status: PurchaseRecordStatus; accountId: string | null; emailKey: string | null }> {
  const { session } = input;
  return sql.begin(async (tx) => {
    const [account] = session.accountId
      ? await tx<{ id: string }[]>`SELECT id FROM accounts WHERE id = ${session.accountId}`
      : [];
    const status = await recordPurchase(tx, {
      ...checkoutPurchaseFacts(session),
      accountId: account?.id ?? null,
      credits: null,
      status: input.status,
      reasonCode: input.status,
      reason:
        input.status === 'expired' ? 'the checkout session expired unpaid' : 'the delayed payment failed',
      workflowId: input.workflowId,
    });
    if (status !== 'payment_failed' || !account)
      return { status, accountId: account?.id ?? null, emailKey: null };
    const emailKey = emailKeys.checkoutPaymentFailed(session.id);
    const email = renderCheckoutPaymentFailedEmail({
      amountCents: session.amountTotal,
      currency: session.currency,
      reference: session.id,
    });
    await enqueueAccountEmail(tx, {
      key: emailKey,
      accountId: account.id,
      workflowId: input.workflowId,
      ...email,
    });
    return { status, accountId: account.id, emailKey };
  });
}
