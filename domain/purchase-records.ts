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
