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
