/** Where a purchase stands, as the purchases table and the API name it. */
export const PURCHASE_RECORD_STATUSES = [
  'awaiting_payment',
  'held_for_review',
  'completed',
  'rejected',
  'review_expired',
  'payment_failed',
  'expired',
] as const;

export type PurchaseRecordStatus = (typeof PURCHASE_RECORD_STATUSES)[number];

/** What a valid purchase (or an operator's approval) grants: always what the server sold. */
export interface PurchaseGrant {
  checkoutSessionId: string;
  accountId: string;
  packId: string | null;
  packName: string;
  credits: number;
  amountCents: number | null;
  currency: string | null;
  livemode: boolean;
  /** The payment's intent, through which later refunds and disputes find this purchase. */
  paymentIntentId: string | null;
  workflowId: string;
  /** Why credits were granted when validation alone did not allow it (an operator's approval). */
  approvedBy?: string | null;
}
