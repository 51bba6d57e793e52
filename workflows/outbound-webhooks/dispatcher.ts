import {
  ActivityFailure,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { createOutboundWebhookActivities } from '../../activities/outbound-webhooks/dispatcher';
import {
  webhookDispatcherStatusQuery,
  webhookKickSignal,
  type WebhookDeliveryBatch,
  type WebhookDispatcherInput,
  type WebhookDispatcherResult,
  type WebhookDispatcherStatus,
} from './contract';
import { BillingStatus } from '../shared/search-attributes';
import { databaseActivityOptions } from '../shared/activity-options';

type OutboundWebhookActivities = ReturnType<typeof createOutboundWebhookActivities>;

/**
 * One attempt of one delivery. The activity bounds its HTTP request itself (WEBHOOK_ATTEMPT_TIMEOUT_MS);
 * Temporal retries it only when it could not record its outcome (a database outage). The retries
 * a failing endpoint gets, with backoff over days, are the dispatcher's: each is a new attempt.
 */
const webhookAttemptActivityOptions: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '30 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};

const db = proxyActivities<OutboundWebhookActivities>(databaseActivityOptions);
const http = proxyActivities<OutboundWebhookActivities>(webhookAttemptActivityOptions);

/** Waits this long after a look at the endpoint failed (the activity gave up: a long outage). */
const AFTER_FAILED_LOOK = '1 minute';
/** A run continues as new past this many history events, with nothing carried over. */
const HISTORY_LIMIT = 4_000;

/**
 * Delivers an endpoint's webhooks, for as long as the endpoint exists: takes the deliveries that
 * are due (per account, only the oldest pending one, so an account's events arrive in order),
 * attempts them side by side, then waits for the next retry, a kick (a commit queued a delivery,
 * a re-send, an update) or the poll interval, whichever comes first. The timer is the safety net:
 * an event committed just before a crash, whose kick was lost, is delivered at the next look.
 * One dispatcher per endpoint, so a failing endpoint delays no other; and nothing that moves
 * money waits on it.
 */
export async function webhookDispatcherWorkflow(
  input: WebhookDispatcherInput,
): Promise<WebhookDispatcherResult> {
  const status: WebhookDispatcherStatus = {
    endpointId: input.endpointId,
    stage: 'starting',
    looks: 0,
    attempts: 0,
    delivered: 0,
    failed: 0,
  };
  let kicked = false;
  let shown: string | null = null;
  setHandler(webhookKickSignal, () => {
    kicked = true;
  });
  setHandler(webhookDispatcherStatusQuery, () => status);
  // Only whether it runs or is paused: the stage changes with every batch.
  const show = (value: 'active' | 'paused' | 'ended') => {
    if (shown === value) return;
    shown = value;
    upsertSearchAttributes({ [BillingStatus.name]: [value] });
  };

  for (;;) {
    kicked = false;
    let batch: WebhookDeliveryBatch;
    try {
      batch = await db.takeWebhookDeliveries({ endpointId: input.endpointId });
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      await sleep(AFTER_FAILED_LOOK);
      continue;
    }
    status.looks += 1;
    if (batch.endpoint === 'deleted') {
      status.stage = 'ended';
      show('ended');
      return { ended: 'endpoint_deleted', attempts: status.attempts };
    }
    show(batch.endpoint === 'active' ? 'active' : 'paused');

    if (batch.due.length > 0) {
      status.stage = 'delivering';
      const outcomes = await Promise.all(
        batch.due.map(async (due) => {
          try {
            return (
              await http.attemptWebhookDelivery({ deliveryId: due.deliveryId, attempt: due.attempts + 1 })
            ).outcome;
          } catch (error) {
            // Not recorded: the delivery stays due and the next look takes it again.
            if (error instanceof ActivityFailure) return 'skipped' as const;
            throw error;
          }
        }),
      );
      for (const outcome of outcomes) {
        if (outcome !== 'skipped') status.attempts += 1;
        if (outcome === 'delivered') status.delivered += 1;
        if (outcome === 'failed') status.failed += 1;
      }
    } else {
      status.stage = batch.endpoint === 'active' ? 'waiting' : 'paused';
      const wait =
        batch.nextDueInMs === null ? batch.pollIntervalMs : Math.min(batch.nextDueInMs, batch.pollIntervalMs);
      await condition(() => kicked, wait);
    }

    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > HISTORY_LIMIT) {
      await continueAsNew<typeof webhookDispatcherWorkflow>(input);
    }
  }
}
