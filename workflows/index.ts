// Every workflow type the worker registers. Deterministic code only: see README, "Workflows".
export { purchaseWorkflow } from './purchase';
