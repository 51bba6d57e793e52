// Every workflow type the worker registers. Deterministic code only: see README, "Workflows".
export { purchaseWorkflow } from './purchase';
export { subscriptionWorkflow } from './subscription';
export { invoiceWorkflow } from './invoice';
export { refundWorkflow, disputeWorkflow } from './reversals';
export { checkoutClosedWorkflow } from './checkout-closed';
export { maintenanceWorkflow, reservationTimeoutWorkflow } from './maintenance';
export { webhookDispatcherWorkflow } from './outbound-webhooks';
export { reconcileWorkflow } from './reconcile';
export { topupWorkflow, lowBalanceNoticeWorkflow } from './topup';
