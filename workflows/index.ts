// Every workflow type the worker registers. Deterministic code only: see docs/layout.md.
export { purchaseWorkflow } from './purchases/purchase';
export { subscriptionWorkflow } from './subscriptions/subscription';
export { invoiceWorkflow } from './subscriptions/invoice';
export { refundWorkflow, disputeWorkflow } from './reversals/reversals';
export { checkoutClosedWorkflow } from './purchases/checkout-closed';
export { maintenanceWorkflow, reservationTimeoutWorkflow } from './maintenance/maintenance';
export { webhookDispatcherWorkflow } from './outbound-webhooks/dispatcher';
export { reconcileWorkflow } from './reconciliation/reconcile';
export { topupWorkflow, lowBalanceNoticeWorkflow } from './topups/topup';
export { creditExpiryNoticeWorkflow } from './notices/expiry-notices';
