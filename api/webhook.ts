import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { createHash } from 'node:crypto';
import express, { Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../config/logger';
import type { Sql } from '../db/client';
import { recordRejectedEvent } from '../db/rejected-events';
import { stripeEventSchema, SUPPORTED_EVENT_API_VERSIONS } from '../domain/stripe-objects';
import { errors } from './errors';
import type { Metrics } from './metrics';
import { routeStripeEvent, type RouteSettings } from './stripe-event-routes';
import { verifyStripeSignature } from './stripe-signature';

export interface WebhookDependencies {
  temporal: Client;
  sql: Sql;
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
export function webhookRouter({ temporal, sql, logger, metrics, config }: WebhookDependencies): Router {
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
      /**
       * A signed event that can never be processed is permanent: stored for operators and
       * answered 2xx, so Stripe does not redeliver it for days. Only an outage answers 5xx.
       */
      const reject = async (
        eventId: string,
        eventType: string | null,
        reasonCode: string,
        reason: string,
      ) => {
        await recordRejectedEvent(sql, {
          eventId,
          eventType,
          reasonCode,
          reason,
          payload: rawBody.toString('utf8'),
        });
        metrics.webhookEvents.inc({ type: eventType ?? 'unknown', outcome: 'rejected' });
        metrics.webhookRejected.inc({ reason: reasonCode });
        logger.warn({ eventId, eventType, reasonCode, reason }, 'event rejected for good');
        res.json({ received: true, workflowId: null, status: 'rejected' });
      };

      const parsed = stripeEventSchema.safeParse(payload);
      if (!parsed.success) {
        const { id, type } = identify(payload, rawBody);
        await reject(id, type, 'invalid_event', z.prettifyError(parsed.error));
        return;
      }
      const event = parsed.data;
      const log = logger.child({ eventId: event.id, eventType: event.type });
      if (event.api_version && !SUPPORTED_EVENT_API_VERSIONS.has(event.api_version)) {
        metrics.webhookUnknownApiVersion.inc({ api_version: event.api_version });
        log.warn(
          { apiVersion: event.api_version },
          'event of an API version the schemas were not written for',
        );
      }

      let route;
      try {
        route = routeStripeEvent(event, config);
      } catch (error) {
        if (!(error instanceof z.ZodError)) throw error;
        await reject(event.id, event.type, 'invalid_object', z.prettifyError(error));
        return;
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
        const refusal = permanentRefusal(error);
        if (refusal) {
          await reject(event.id, event.type, 'refused_by_temporal', refusal);
          return;
        }
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

/**
 * Who a malformed but signed event is, as far as can be told: its own ID when it has a sane
 * one, else a digest of the body (the same bytes redelivered are the same rejected event).
 */
function identify(payload: unknown, rawBody: Buffer): { id: string; type: string | null } {
  const fields = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  const sane = (value: unknown, max: number) =>
    typeof value === 'string' && value.length > 0 && value.length <= max && /^[\x21-\x7e]+$/.test(value)
      ? value
      : null;
  const id = sane(fields.id, 255) ?? `sha256:${createHash('sha256').update(rawBody).digest('hex')}`;
  return { id, type: sane(fields.type, 100) };
}

/**
 * Temporal refused the start for a reason no redelivery can change: a value over one of its size
 * limits (gRPC INVALID_ARGUMENT, "… exceeds size limit …"). Other INVALID_ARGUMENT answers, such
 * as a namespace without the search attributes registered, are the operator's to fix: those stay
 * 503, so Stripe keeps the event until the configuration is right.
 */
function permanentRefusal(error: unknown): string | null {
  const INVALID_ARGUMENT = 3;
  for (let current: unknown = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, details } = current as { code?: unknown; details?: unknown };
    if (code === INVALID_ARGUMENT && typeof details === 'string' && /exceeds size limit/i.test(details)) {
      return details;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
