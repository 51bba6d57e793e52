import { proxyActivities } from '@temporalio/workflow';
import type { BareActivities } from './bare-activities';

const { first, second } = proxyActivities<BareActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** The engine's own cost of a workflow that does nothing: two empty activities, one after the other. */
export async function benchBareWorkflow(): Promise<void> {
  await first();
  await second();
}
