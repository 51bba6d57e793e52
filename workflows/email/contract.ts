/** What the runs that send an email (receipts, notices, dunning) show of it in their status. */

/** Where an email of a run is: none to send, being delivered, or delivered or given up. */
export type ReceiptState = 'not_applicable' | 'pending' | 'sent' | 'failed';
