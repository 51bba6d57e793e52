import type { RequestHandler } from 'express';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    webhookEvents: new Counter({
      name: 'billing_webhook_events_total',
      help: 'Stripe webhook deliveries by event type and outcome (started, duplicate, ignored, rejected, unavailable).',
      labelNames: ['type', 'outcome'] as const,
      registers: [registry],
    }),
    webhookRejected: new Counter({
      name: 'billing_webhook_events_rejected_total',
      help: 'Signed Stripe events that can never be processed, stored in rejected_events, by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    webhookUnknownApiVersion: new Counter({
      name: 'billing_webhook_events_unknown_api_version_total',
      help: 'Stripe events of an API version the event schemas were not written for (still processed).',
      labelNames: ['api_version'] as const,
      registers: [registry],
    }),
    webhookDuration: new Histogram({
      name: 'billing_webhook_duration_seconds',
      help: 'Stripe webhook answer time, from the first byte read to the answer sent (signature, routing, the workflow start), by HTTP status.',
      labelNames: ['status'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'billing_http_request_duration_seconds',
      help: 'HTTP request duration by route and status.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Times a webhook delivery whatever ends it: mounted before the body parser, it also sees the
 * answers given before the handler runs (413 too large) and by the error middleware (400, 5xx).
 */
export function timeWebhook(metrics: Metrics): RequestHandler {
  return (_req, res, next) => {
    const stop = metrics.webhookDuration.startTimer();
    res.once('finish', () => stop({ status: String(res.statusCode) }));
    next();
  };
}
