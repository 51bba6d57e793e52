import type { Client } from '@temporalio/client';
import express, { Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../config/logger';
import type { Sql } from '../db/client';
import { recordRejectedEvent } from '../db/stripe/rejected-events';
import {
  eventWorkflowStart,
  permanentTemporalRefusal,
  type EventStart,
  startEventWorkflow,
  takeInStripeEvent,
} from '../stripe/event-intake';
import type { RouteSettings } from '../stripe/event-routes';
import { SUPPORTED_EVENT_API_VERSIONS } from '../stripe/objects';
import { errors } from './errors';
import type { DocumentedRoute } from './http/route';
import { timeWebhook, type Metrics } from './metrics';
import { verifyStripeSignature } from '../stripe/signature';

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

const webhookResponse = z
  .object({
    received: z.literal(true),
    workflowId: z.string().nullable(),
    status: z.enum(['started', 'duplicate', 'ignored', 'rejected']).meta({
      description: '`rejected`: a signed event that can never be processed, kept at GET /v1/rejected-events.',
    }),
  })
  .meta({ id: 'WebhookAck' });

export const stripeWebhookRoute: DocumentedRoute = {
  method: 'post',
  path: '/webhooks/stripe',
  summary: 'Receive a Stripe event',
  description:
    'Verifies `Stripe-Signature` over the raw body with every configured secret, then hands the event to ' +
    'Temporal (workflow ID = event ID). Answers 2xx only once the work is durable.',
  security: [],
  // Described only: the signature is checked over the raw bytes, then stripe/event-intake.ts parses them.
  body: z.looseObject({}).meta({ description: 'A Stripe Event.' }),
  responses: {
    200: [
      'Accepted, a duplicate, ignored, or rejected for good (a signed event that can never be processed).',
      webhookResponse,
    ],
  },
  errors: {
    400:
      '`missing_signature`, `invalid_signature`, `signature_expired`, `malformed_json`, `invalid_event`, or a body ' +
      'that is not what its Content-Encoding says (`malformed_body`).',
    413: 'Body over the limit (`payload_too_large`).',
    415: 'A Content-Encoding other than gzip, deflate or br (`unsupported_content_encoding`).',
    503: 'Temporal or the database unavailable (`temporal_unavailable`, `database_unavailable`): Stripe retries.',
  },
};

/**
 * POST /webhooks/stripe. Answers 2xx only once Temporal holds the work (or already held it):
 * the workflow ID is the event ID, so a redelivery is a duplicate and never a second run.
 */
export function webhookRouter({ temporal, sql, logger, metrics, config }: WebhookDependencies): Router {
  const router = Router();
  // The raw bytes are what Stripe signed, so this route alone reads the body unparsed.
  router.post(
    stripeWebhookRoute.path,
    timeWebhook(metrics),
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

      const intake = takeInStripeEvent(payload, rawBody, config);
      if (intake.action === 'reject') {
        await reject(intake.eventId, intake.eventType, intake.reasonCode, intake.reason);
        return;
      }
      const { event } = intake;
      const log = logger.child({ eventId: event.id, eventType: event.type });
      if (event.api_version && !SUPPORTED_EVENT_API_VERSIONS.has(event.api_version)) {
        metrics.webhookUnknownApiVersion.inc({ api_version: event.api_version });
        log.warn(
          { apiVersion: event.api_version },
          'event of an API version the schemas were not written for',
        );
      }
      if (intake.action === 'ignore') {
        metrics.webhookEvents.inc({ type: event.type, outcome: 'ignored' });
        log.info({ reason: intake.reason }, 'event ignored');
        res.json({ received: true, workflowId: null, status: 'ignored' });
        return;
      }
      const { route } = intake;

      let handed: EventStart;
      const start = eventWorkflowStart(route, event.id, config.temporal.taskQueue);
      const routed = log.child({
        workflowId: start.workflowId,
        accountId: route.searchAttributes.find((pair) => pair.key.name === 'AccountId')?.value ?? null,
      });
      try {
        handed = await temporal.withDeadline(Date.now() + config.webhookTemporalTimeoutMs, () =>
          startEventWorkflow(temporal.workflow, route, event.id, config.temporal.taskQueue),
        );
      } catch (error) {
        const refusal = permanentTemporalRefusal(error);
        if (refusal) {
          await reject(event.id, event.type, 'refused_by_temporal', refusal);
          return;
        }
        metrics.webhookEvents.inc({ type: event.type, outcome: 'unavailable' });
        routed.warn({ err: error }, 'could not hand the event to Temporal; answering 503 so Stripe retries');
        throw errors.temporalUnavailable();
      }
      const { outcome: status, workflowId } = handed;
      metrics.webhookEvents.inc({ type: event.type, outcome: status });
      // A late run of its own (a top-up's payment heard after its run ended) is named as such.
      routed.info({ workflowType: route.workflowType, status, startedAs: workflowId }, 'event accepted');
      res.json({ received: true, workflowId, status });
    },
  );
  return router;
}
