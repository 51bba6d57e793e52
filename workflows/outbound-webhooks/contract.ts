import { defineQuery, defineSignal } from '@temporalio/workflow';

/*
 * The contract of an endpoint's dispatcher workflow. It holds no schema: workflow code imports
 * it, and every module the workflow bundle holds is evaluated again for each workflow run.
 */

export const WEBHOOK_DISPATCHER_WORKFLOW_TYPE = 'webhookDispatcherWorkflow';

/** One dispatcher per endpoint: a failing endpoint delays no other. */
export const webhookDispatcherWorkflowId = (endpointId: string) => `webhook-endpoint:${endpointId}`;

export interface WebhookDispatcherInput {
  endpointId: string;
}

/** Where a dispatcher is: delivering, waiting for the next retry or a new event, or done. */
export interface WebhookDispatcherStatus {
  endpointId: string;
  stage: 'starting' | 'delivering' | 'waiting' | 'paused' | 'ended';
  /** Looks at the endpoint's pending deliveries taken by this run. */
  looks: number;
  /** Attempts made by this run (the count restarts at each continue-as-new). */
  attempts: number;
  delivered: number;
  failed: number;
}

/** What an endpoint's dispatcher stops with: the endpoint was deleted. */
export type WebhookDispatcherResult = { ended: 'endpoint_deleted'; attempts: number };

/** "Look again now": sent after a commit queued a delivery, or after a re-send or an update. */
export const webhookKickSignal = defineSignal('webhookKick');
export const webhookDispatcherStatusQuery = defineQuery<WebhookDispatcherStatus>('status');

/** A delivery that may be attempted now: the oldest pending one of its account, due. */
export interface DueWebhookDelivery {
  deliveryId: number;
  /** Attempts recorded before this one: the attempt about to be made is `attempts + 1`. */
  attempts: number;
}

/** What the dispatcher learns about its endpoint in one look. */
export interface WebhookDeliveryBatch {
  endpoint: 'active' | 'disabled' | 'deleted';
  due: DueWebhookDelivery[];
  /** How long until the earliest pending delivery is due (null: none pending). */
  nextDueInMs: number | null;
  /** The longest the dispatcher waits before looking again, kicked or not. */
  pollIntervalMs: number;
}

/** What one attempt came to; a retried activity answers what the attempt recorded. */
export interface WebhookAttemptResult {
  outcome: 'delivered' | 'retrying' | 'failed' | 'skipped';
  responseStatus: number | null;
}
