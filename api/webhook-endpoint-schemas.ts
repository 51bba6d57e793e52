import { z } from 'zod';
import type { ZodOpenApiOperationObject } from 'zod-openapi';
import type { ApiRole } from '../config/env';
import {
  DEFAULT_EVENT_TYPES,
  MAX_ENDPOINT_URL_LENGTH,
  OUTBOUND_API_VERSION,
  OUTBOUND_EVENT_TYPES,
  outboundEventTypeSchema,
} from '../domain/outbound-events';
import { pageQueryFields, type OpenApiBuilders } from './schemas';

/** The schemas of /v1/webhook-endpoints: the handlers validate with them, OpenAPI shows them. */

const endpointId = z
  .string()
  .regex(/^we_[A-Za-z0-9]{1,64}$/, 'a webhook endpoint ID (we_…)')
  .meta({ example: 'we_3kTq9ZpR2xVbN8cLmW4yHs1d' });

const deliveryId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);

// A URL's final check (scheme, credentials, loopback, production) is `endpointUrlProblem`, which
// answers 422 webhook_url_not_allowed; here only its shape.
const url = z
  .string()
  .min(1)
  .max(MAX_ENDPOINT_URL_LENGTH)
  .meta({
    description:
      'Where events are POSTed. HTTPS to a public host in production; outside production, plain http to loopback too. ' +
      'No credentials in the URL.',
    example: 'https://backend.example.com/billing/webhooks',
  });

const eventTypes = z
  .array(outboundEventTypeSchema)
  .min(1)
  .max(OUTBOUND_EVENT_TYPES.length)
  .refine((types) => new Set(types).size === types.length, 'each type once')
  .meta({
    description: `The events to send. Default: every type except \`credits.debited\`, which is sent only when listed.`,
    example: [...DEFAULT_EVENT_TYPES],
  });

const description = z
  .string()
  .min(1)
  .max(500)
  .refine((text) => !/\p{Cc}/u.test(text), 'no control characters')
  .refine((text) => !/\p{Cs}/u.test(text), 'well-formed Unicode (no lone surrogates)');

export const webhookEndpointParams = z.object({ endpointId });
export const webhookDeliveryParams = z.object({ endpointId, deliveryId });

export const createWebhookEndpointBody = z
  .strictObject({ url, eventTypes: eventTypes.optional(), description: description.optional() })
  .meta({ id: 'CreateWebhookEndpoint' });

export const updateWebhookEndpointBody = z
  .strictObject({
    url: url.optional(),
    eventTypes: eventTypes.optional(),
    description: description.nullable().optional(),
    enabled: z.boolean().optional().meta({
      description: 'false pauses: nothing new is queued for it, pending deliveries wait; true resumes.',
    }),
  })
  .refine((body) => Object.keys(body).length > 0, 'at least one field to change')
  .meta({ id: 'UpdateWebhookEndpoint' });

export const webhookDeliveriesQuery = z.strictObject({
  ...pageQueryFields('Deliveries'),
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
});

export const webhookEndpointResponse = z
  .object({
    id: endpointId,
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(outboundEventTypeSchema),
    enabled: z.boolean(),
    apiVersion: z.literal(OUTBOUND_API_VERSION).meta({ description: 'The payload version sent to it.' }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'WebhookEndpoint' });

export const createdWebhookEndpointResponse = webhookEndpointResponse
  .extend({
    secret: z.string().meta({
      description: 'Signs every delivery (`Billing-Signature`). Shown this once: store it now.',
      example: 'whsec_…',
    }),
  })
  .meta({ id: 'CreatedWebhookEndpoint' });

export const webhookEndpointListResponse = z
  .object({ endpoints: z.array(webhookEndpointResponse) })
  .meta({ id: 'WebhookEndpointList' });

export const deletedWebhookEndpointResponse = z
  .object({ id: endpointId, deleted: z.literal(true) })
  .meta({ id: 'DeletedWebhookEndpoint' });

const attemptResponse = z.object({
  attempt: z.number().int(),
  at: z.iso.datetime(),
  succeeded: z.boolean(),
  responseStatus: z.number().int().nullable().meta({ description: 'The HTTP status answered, if any.' }),
  latencyMs: z.number().int(),
  error: z
    .string()
    .nullable()
    .meta({ description: 'Why it failed, in short (timeout, refused, HTTP 500…).' }),
  responseExcerpt: z
    .string()
    .nullable()
    .meta({ description: 'The first 300 characters of the body answered.' }),
  manual: z.boolean().meta({ description: 'Made because of a re-send by hand.' }),
});

export const webhookDeliveryResponse = z
  .object({
    id: z.number().int(),
    eventId: z.string().meta({ example: 'evt_4f1c0a…' }),
    eventType: outboundEventTypeSchema,
    accountId: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    nextAttemptAt: z.iso.datetime().nullable().meta({ description: 'When pending: the next attempt.' }),
    deliveredAt: z.iso.datetime().nullable(),
    createdAt: z.iso.datetime(),
    recentAttempts: z.array(attemptResponse).meta({ description: 'The last 20 attempts, newest first.' }),
  })
  .meta({ id: 'WebhookDelivery' });

export const webhookDeliveryPageResponse = z
  .object({ deliveries: z.array(webhookDeliveryResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'WebhookDeliveryPage' });

/** The role of each operation: endpoints decide where every account's events go, so changing them is admin. */
export const WEBHOOK_ENDPOINT_ROLES: Record<string, Record<string, ApiRole>> = {
  '/v1/webhook-endpoints': { get: 'read', post: 'admin' },
  '/v1/webhook-endpoints/{endpointId}': { get: 'read', patch: 'admin', delete: 'admin' },
  '/v1/webhook-endpoints/{endpointId}/deliveries': { get: 'read' },
  '/v1/webhook-endpoints/{endpointId}/deliveries/{deliveryId}/resend': { post: 'admin' },
};

const NOT_FOUND = { '404': '`webhook_endpoint_not_found`.' };

/** The OpenAPI operations of /v1/webhook-endpoints, with the document's own helpers. */
export function webhookEndpointOperations({
  json,
  responses,
  authFailures,
}: OpenApiBuilders): Record<string, Record<string, ZodOpenApiOperationObject>> {
  const bad = (what: string) => ({
    '400': `${what} (\`invalid_request\`, \`malformed_json\`).`,
    ...authFailures,
  });
  return {
    '/v1/webhook-endpoints': {
      post: {
        summary: 'Register a webhook endpoint',
        description:
          'Events are POSTed to it as JSON, signed: `Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" ' +
          'with the secret>`. The answer holds the secret, this once.',
        requestBody: json(createWebhookEndpointBody),
        responses: responses(
          { '201': ['Created, enabled.', createdWebhookEndpointResponse] },
          {
            ...bad('Invalid body'),
            '422': 'A URL that may not receive webhooks (`webhook_url_not_allowed`).',
          },
        ),
      },
      get: {
        summary: 'List the webhook endpoints',
        responses: responses(
          { '200': ['Every endpoint, oldest first.', webhookEndpointListResponse] },
          authFailures,
        ),
      },
    },
    '/v1/webhook-endpoints/{endpointId}': {
      get: {
        summary: 'Read a webhook endpoint',
        requestParams: { path: webhookEndpointParams },
        responses: responses(
          { '200': ['The endpoint (without its secret).', webhookEndpointResponse] },
          { ...bad('Invalid endpoint ID'), ...NOT_FOUND },
        ),
      },
      patch: {
        summary: 'Change, pause or resume a webhook endpoint',
        description:
          'A paused endpoint is sent no event that happens while it is paused; its pending deliveries wait and go ' +
          'out once it is enabled again (within their retry window).',
        requestParams: { path: webhookEndpointParams },
        requestBody: json(updateWebhookEndpointBody),
        responses: responses(
          { '200': ['The endpoint as changed.', webhookEndpointResponse] },
          {
            ...bad('Invalid body'),
            ...NOT_FOUND,
            '422': 'A URL that may not receive webhooks (`webhook_url_not_allowed`).',
          },
        ),
      },
      delete: {
        summary: 'Delete a webhook endpoint and its deliveries',
        requestParams: { path: webhookEndpointParams },
        responses: responses(
          { '200': ['Deleted.', deletedWebhookEndpointResponse] },
          { ...bad('Invalid endpoint ID'), ...NOT_FOUND },
        ),
      },
    },
    '/v1/webhook-endpoints/{endpointId}/deliveries': {
      get: {
        summary: "An endpoint's deliveries and their attempts, newest first",
        requestParams: { path: webhookEndpointParams, query: webhookDeliveriesQuery },
        responses: responses(
          { '200': ['One page; `nextCursor` is null on the last.', webhookDeliveryPageResponse] },
          { ...bad('Bad limit, cursor or status'), ...NOT_FOUND },
        ),
      },
    },
    '/v1/webhook-endpoints/{endpointId}/deliveries/{deliveryId}/resend': {
      post: {
        summary: 'Send a delivery again',
        description:
          'Whatever it came to, the delivery is pending again, due now, with a fresh retry window; its next attempt ' +
          "is marked as made by hand. It keeps its place in its account's order. Same event ID: receivers deduplicate by it.",
        requestParams: { path: webhookDeliveryParams },
        responses: responses(
          { '202': ['Queued; the attempt shows in the deliveries.', webhookDeliveryResponse] },
          { ...bad('Invalid IDs'), '404': '`webhook_endpoint_not_found` or `webhook_delivery_not_found`.' },
        ),
      },
    },
  };
}
