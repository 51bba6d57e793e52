import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import express, { Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../config/logger';
import { stripeEventSchema } from '../domain/stripe-objects';
import { errors } from './errors';
import type { Metrics } from './metrics';
import { routeStripeEvent, type RouteSettings } from './stripe-event-routes';
import { verifyStripeSignature } from './stripe-signature';

export interface WebhookDependencies {
  temporal: Client;
  logger: Logger;
  metrics: Metrics;
  config: RouteSettings & {
    webhookSecrets: string[];
    webhookMaxBodyBytes: number;
    webhookTemporalTimeoutMs: number;
    temporal: { taskQueue: string };
  };
}

/**
 * POST /webhooks/stripe. Answers 2xx only once Temporal holds the work (or already held it):
 * the workflow ID is the event ID, so a redelivery is a duplicate and never a second run.
 */
export function webhookRouter({ temporal, logger, metrics, config }: WebhookDependencies): Router {
  const router = Router();
  // The raw bytes are what Stripe signed, so this route alone reads the body unparsed.
  router.post(
    '/webhooks/stripe',
    express.raw({ type: () => true, limit: config.webhookMaxBodyBytes }),
    async (req, res) => {
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let payload: unknown;
      try {
        payload = verifyStripeSignature(rawBody, req.get('stripe-signature'), config.webhookSecrets);
      } catch (error) {
        metrics.webhookEvents.inc({ type: 'unverified', outcome: 'rejected' });
        throw error;
      }
      const parsed = stripeEventSchema.safeParse(payload);
      if (!parsed.success) throw errors.invalidEvent(z.prettifyError(parsed.error));
      const event = parsed.data;
      const log = logger.child({ eventId: event.id, eventType: event.type });

      let route;
      try {
        route = routeStripeEvent(event, config);
      } catch (error) {
        if (error instanceof z.ZodError) throw errors.invalidEvent(z.prettifyError(error));
        throw error;
      }
      if (route.action === 'ignore') {
        metrics.webhookEvents.inc({ type: event.type, outcome: 'ignored' });
        log.info({ reason: route.reason }, 'event ignored');
        res.json({ received: true, workflowId: null, status: 'ignored' });
        return;
      }

      let status: 'started' | 'duplicate';
      try {
        await temporal.withDeadline(Date.now() + config.webhookTemporalTimeoutMs, () =>
          temporal.workflow.start(route.workflowType, {
            workflowId: event.id,
            taskQueue: config.temporal.taskQueue,
            args: route.args,
            workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            typedSearchAttributes: route.searchAttributes,
          }),
        );
        status = 'started';
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) {
          metrics.webhookEvents.inc({ type: event.type, outcome: 'unavailable' });
          log.warn({ err: error }, 'could not hand the event to Temporal; answering 503 so Stripe retries');
          throw errors.temporalUnavailable();
        }
        status = 'duplicate';
      }
      metrics.webhookEvents.inc({ type: event.type, outcome: status });
      log.info({ workflowType: route.workflowType, status }, 'event accepted');
      res.json({ received: true, workflowId: event.id, status });
    },
  );
  return router;
}
