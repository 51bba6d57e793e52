import { z } from 'zod';
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  findWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  MAX_SECRET_OVERLAP_SECONDS,
  requestResend,
  rotateWebhookEndpointSecret,
  updateWebhookEndpoint,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../../db/outbound-webhooks/endpoints';
import {
  DEFAULT_EVENT_TYPES,
  endpointUrlProblem,
  MAX_ENDPOINT_URL_LENGTH,
  OUTBOUND_API_VERSION,
  OUTBOUND_EVENT_TYPES,
  outboundEventTypeSchema,
} from '../../domain/outbound-events';
import { recordAudit, webhookEndpointSubject } from '../../db/audit/audit-log';
import { kickWebhookDispatcher } from '../../temporal/outbound-webhook-kicker';
import { decodeCursor, pageOf } from '../cursors';
import type { AppDependencies } from '../dependencies';
import { errors } from '../errors';
import { humanText, pageQueryFields } from '../http/common-schemas';
import { defineRoute } from '../http/route';

/**
 * Clients' webhook endpoints: register (the secret is answered once), list, read, change, pause,
 * delete; an endpoint's deliveries with their attempts; a re-send by hand. Reading is open to
 * read keys; anything that changes where events go, or sends one again, needs an admin key.
 */

// --- schemas ------------------------------------------------------------------------------

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

const endpointDescription = humanText(500);

const endpointParams = z.object({ endpointId });
const deliveryParams = z.object({ endpointId, deliveryId });

const createEndpointBody = z
  .strictObject({ url, eventTypes: eventTypes.optional(), description: endpointDescription.optional() })
  .meta({ id: 'CreateWebhookEndpoint' });

const updateEndpointBody = z
  .strictObject({
    url: url.optional(),
    eventTypes: eventTypes.optional(),
    description: endpointDescription.nullable().optional(),
    enabled: z.boolean().optional().meta({
      description: 'false pauses: nothing new is queued for it, pending deliveries wait; true resumes.',
    }),
  })
  .refine((body) => Object.keys(body).length > 0, 'at least one field to change')
  .meta({ id: 'UpdateWebhookEndpoint' });

const rotateSecretBody = z
  .strictObject({
    overlapSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_SECRET_OVERLAP_SECONDS)
      .optional()
      .meta({
        description:
          'How long the replaced secret keeps signing beside the new one (a second `v1,` entry in `webhook-signature`). ' +
          'Default 86400 (a day); 0 stops it at once.',
        example: 86400,
      }),
  })
  .optional()
  .meta({ id: 'RotateWebhookSecret' });

/** How long a replaced secret signs beside the new one unless the request says otherwise. */
const DEFAULT_SECRET_OVERLAP_SECONDS = 24 * 60 * 60;

const deliveriesQuery = z.strictObject({
  ...pageQueryFields('Deliveries'),
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
});

const endpointResponse = z
  .object({
    id: endpointId,
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(outboundEventTypeSchema),
    enabled: z.boolean(),
    apiVersion: z.literal(OUTBOUND_API_VERSION).meta({ description: 'The payload version sent to it.' }),
    previousSecretExpiresAt: z.iso.datetime().nullable().meta({
      description: 'After a secret rotation: until when the replaced secret still signs too; null otherwise.',
    }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'WebhookEndpoint' });

const createdEndpointResponse = endpointResponse
  .extend({
    secret: z.string().meta({
      description:
        'Signs every delivery (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`); give it ' +
        'as it is to a Standard Webhooks library. Shown this once: store it now.',
      example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    }),
  })
  .meta({ id: 'CreatedWebhookEndpoint' });

const endpointListResponse = z
  .object({ endpoints: z.array(endpointResponse) })
  .meta({ id: 'WebhookEndpointList' });

const deletedEndpointResponse = z
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

const deliveryResponse = z
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

const deliveryPageResponse = z
  .object({ deliveries: z.array(deliveryResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'WebhookDeliveryPage' });

// --- presenting ---------------------------------------------------------------------------

const present = (endpoint: WebhookEndpoint) => ({
  id: endpoint.id,
  url: endpoint.url,
  description: endpoint.description,
  eventTypes: endpoint.eventTypes,
  enabled: endpoint.enabled,
  apiVersion: OUTBOUND_API_VERSION,
  previousSecretExpiresAt: endpoint.previousSecretExpiresAt?.toISOString() ?? null,
  createdAt: endpoint.createdAt.toISOString(),
  updatedAt: endpoint.updatedAt.toISOString(),
});

const presentDelivery = (delivery: WebhookDelivery) => ({
  id: delivery.id,
  eventId: delivery.eventId,
  eventType: delivery.eventType,
  accountId: delivery.accountId,
  status: delivery.status,
  attempts: delivery.attempts,
  nextAttemptAt: delivery.nextAttemptAt?.toISOString() ?? null,
  deliveredAt: delivery.deliveredAt?.toISOString() ?? null,
  createdAt: delivery.createdAt.toISOString(),
  recentAttempts: delivery.recentAttempts.map((attempt) => ({ ...attempt, at: attempt.at.toISOString() })),
});

// --- operations ---------------------------------------------------------------------------

type Deps = Pick<AppDependencies, 'sql' | 'temporal' | 'config' | 'logger'>;

function checkUrl(deps: Deps, endpointUrl: string): void {
  const problem = endpointUrlProblem(endpointUrl, deps.config.nodeEnv === 'production');
  if (problem) throw errors.webhookUrlNotAllowed(problem);
}

// The change is committed either way; a dispatcher that is not kicked looks on its own timer.
async function kick(deps: Deps, endpointId: string): Promise<void> {
  try {
    await kickWebhookDispatcher(deps.temporal, deps.config.temporal.taskQueue, endpointId);
  } catch (error) {
    deps.logger.warn({ err: error, endpointId }, 'webhook dispatcher not kicked');
  }
}

async function requireEndpoint(deps: Deps, endpointId: string): Promise<WebhookEndpoint> {
  const endpoint = await findWebhookEndpoint(deps.sql, endpointId);
  if (!endpoint) throw errors.webhookEndpointNotFound(endpointId);
  return endpoint;
}

/**
 * Each change to an endpoint is recorded in the audit log in its own transaction, as the API
 * shows the endpoint: never with its secret (a rotation records that it happened and the overlap).
 * `actor` is the API key's name.
 */
async function registerEndpoint(deps: Deps, request: z.output<typeof createEndpointBody>, actor: string) {
  checkUrl(deps, request.url);
  const created = await deps.sql.begin(async (tx) => {
    const made = await createWebhookEndpoint(tx, deps.config.temporalPayloads.keyRing, {
      url: request.url,
      description: request.description ?? null,
      eventTypes: request.eventTypes ?? [...DEFAULT_EVENT_TYPES],
    });
    await recordAudit(tx, {
      actor,
      action: 'webhook_endpoint.created',
      subject: webhookEndpointSubject(made.id),
      before: null,
      after: present(made),
      reason: null,
    });
    return made;
  });
  await kick(deps, created.id);
  return created;
}

/** Changes, pauses or resumes the endpoint; an enabled one is told to look at once. */
async function changeEndpoint(
  deps: Deps,
  endpointId: string,
  change: z.output<typeof updateEndpointBody>,
  actor: string,
) {
  if (change.url !== undefined) checkUrl(deps, change.url);
  const updated = await deps.sql.begin(async (tx) => {
    const changed = await updateWebhookEndpoint(tx, endpointId, change);
    if (!changed) return null;
    await recordAudit(tx, {
      actor,
      action: 'webhook_endpoint.updated',
      subject: webhookEndpointSubject(endpointId),
      before: present(changed.before),
      after: present(changed.endpoint),
      reason: null,
    });
    return changed.endpoint;
  });
  if (!updated) throw errors.webhookEndpointNotFound(endpointId);
  if (updated.enabled) await kick(deps, endpointId);
  return updated;
}

async function removeEndpoint(deps: Deps, endpointId: string, actor: string): Promise<void> {
  const deleted = await deps.sql.begin(async (tx) => {
    const gone = await deleteWebhookEndpoint(tx, endpointId);
    if (!gone) return null;
    await recordAudit(tx, {
      actor,
      action: 'webhook_endpoint.deleted',
      subject: webhookEndpointSubject(endpointId),
      before: present(gone),
      after: null,
      reason: null,
    });
    return gone;
  });
  if (!deleted) throw errors.webhookEndpointNotFound(endpointId);
  // Its dispatcher finds the endpoint gone and ends.
  await kick(deps, endpointId);
}

async function deliveryPage(deps: Deps, endpointId: string, query: z.output<typeof deliveriesQuery>) {
  await requireEndpoint(deps, endpointId);
  const rows = await listWebhookDeliveries(deps.sql, endpointId, {
    limit: query.limit + 1,
    beforeId: decodeCursor(query.cursor),
    status: query.status,
  });
  return pageOf(rows, query.limit);
}

/** A new secret for the endpoint; the replaced one signs too for the overlap asked for. */
async function rotateSecret(
  deps: Deps,
  endpointId: string,
  request: z.output<typeof rotateSecretBody>,
  actor: string,
) {
  const overlapSeconds = request?.overlapSeconds ?? DEFAULT_SECRET_OVERLAP_SECONDS;
  const rotated = await deps.sql.begin(async (tx) => {
    const done = await rotateWebhookEndpointSecret(
      tx,
      deps.config.temporalPayloads.keyRing,
      endpointId,
      overlapSeconds,
    );
    if (!done) return null;
    await recordAudit(tx, {
      actor,
      action: 'webhook_endpoint.secret_rotated',
      subject: webhookEndpointSubject(endpointId),
      before: present(done.before),
      after: { ...present(done.endpoint), overlapSeconds },
      reason: null,
    });
    return done;
  });
  if (!rotated) throw errors.webhookEndpointNotFound(endpointId);
  return rotated;
}

/** Makes the delivery pending again, due now, and tells the dispatcher. */
async function resendDelivery(deps: Deps, endpointId: string, deliveryId: number): Promise<WebhookDelivery> {
  await requireEndpoint(deps, endpointId);
  const delivery = await requestResend(deps.sql, endpointId, deliveryId);
  if (!delivery) throw errors.webhookDeliveryNotFound(deliveryId);
  await kick(deps, endpointId);
  return delivery;
}

// --- routes -------------------------------------------------------------------------------

const invalid = (what: string) => ({ 400: `${what} (\`invalid_request\`, \`malformed_json\`).` });
const notFound = { 404: '`webhook_endpoint_not_found`.' };
const urlNotAllowed = { 422: 'A URL that may not receive webhooks (`webhook_url_not_allowed`).' };

export const outboundWebhookRoutes = [
  defineRoute({
    method: 'post',
    path: '/v1/webhook-endpoints',
    role: 'admin',
    summary: 'Register a webhook endpoint',
    description:
      'Events are POSTed to it as JSON, signed as Standard Webhooks (standardwebhooks.com) specifies: `webhook-id` ' +
      '(the event ID), `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of ' +
      '"id.timestamp.body">`; verify with a Standard Webhooks library. The answer holds the secret (`whsec_…`), this once.',
    body: createEndpointBody,
    responses: { 201: ['Created, enabled.', createdEndpointResponse] },
    errors: { ...invalid('Invalid body'), ...urlNotAllowed },
    handler: async ({ body, caller, deps }) => {
      const created = await registerEndpoint(deps, body, caller.name);
      return { status: 201, body: { ...present(created), secret: created.secret } };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/webhook-endpoints',
    role: 'read',
    summary: 'List the webhook endpoints',
    responses: { 200: ['Every endpoint, oldest first.', endpointListResponse] },
    errors: {},
    handler: async ({ deps }) => ({
      status: 200,
      body: { endpoints: (await listWebhookEndpoints(deps.sql)).map(present) },
    }),
  }),

  defineRoute({
    method: 'get',
    path: '/v1/webhook-endpoints/:endpointId',
    role: 'read',
    summary: 'Read a webhook endpoint',
    params: endpointParams,
    responses: { 200: ['The endpoint (without its secret).', endpointResponse] },
    errors: { ...invalid('Invalid endpoint ID'), ...notFound },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: present(await requireEndpoint(deps, params.endpointId)),
    }),
  }),

  defineRoute({
    method: 'patch',
    path: '/v1/webhook-endpoints/:endpointId',
    role: 'admin',
    summary: 'Change, pause or resume a webhook endpoint',
    description:
      'A paused endpoint is sent no event that happens while it is paused; its pending deliveries wait and go ' +
      'out once it is enabled again (within their retry window).',
    params: endpointParams,
    body: updateEndpointBody,
    responses: { 200: ['The endpoint as changed.', endpointResponse] },
    errors: { ...invalid('Invalid body'), ...notFound, ...urlNotAllowed },
    handler: async ({ params, body, caller, deps }) => ({
      status: 200,
      body: present(await changeEndpoint(deps, params.endpointId, body, caller.name)),
    }),
  }),

  defineRoute({
    method: 'delete',
    path: '/v1/webhook-endpoints/:endpointId',
    role: 'admin',
    summary: 'Delete a webhook endpoint and its deliveries',
    params: endpointParams,
    responses: { 200: ['Deleted.', deletedEndpointResponse] },
    errors: { ...invalid('Invalid endpoint ID'), ...notFound },
    handler: async ({ params, caller, deps }) => {
      await removeEndpoint(deps, params.endpointId, caller.name);
      return { status: 200, body: { id: params.endpointId, deleted: true } };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/webhook-endpoints/:endpointId/rotate-secret',
    role: 'admin',
    summary: "Rotate a webhook endpoint's secret",
    description:
      'Answers a new secret, this once; it signs every delivery from now on. For `overlapSeconds` (a day by ' +
      'default) the replaced secret signs too: `webhook-signature` then holds two space-separated `v1,` entries, ' +
      'and a receiver holding either secret verifies, so receivers can be moved over without rejecting a delivery. ' +
      'A secret replaced by an earlier rotation stops signing now.',
    params: endpointParams,
    body: rotateSecretBody,
    responses: { 200: ['The endpoint, with its new secret.', createdEndpointResponse] },
    errors: { ...invalid('Invalid endpoint ID or body'), ...notFound },
    handler: async ({ params, body, caller, deps }) => {
      const rotated = await rotateSecret(deps, params.endpointId, body, caller.name);
      return { status: 200, body: { ...present(rotated.endpoint), secret: rotated.secret } };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/webhook-endpoints/:endpointId/deliveries',
    role: 'read',
    summary: "An endpoint's deliveries and their attempts, newest first",
    params: endpointParams,
    query: deliveriesQuery,
    responses: { 200: ['One page; `nextCursor` is null on the last.', deliveryPageResponse] },
    errors: { ...invalid('Bad limit, cursor or status'), ...notFound },
    handler: async ({ params, query, deps }) => {
      const { items, nextCursor } = await deliveryPage(deps, params.endpointId, query);
      return { status: 200, body: { deliveries: items.map(presentDelivery), nextCursor } };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/webhook-endpoints/:endpointId/deliveries/:deliveryId/resend',
    role: 'admin',
    summary: 'Send a delivery again',
    description:
      'Whatever it came to, the delivery is pending again, due now, with a fresh retry window; its next attempt ' +
      "is marked as made by hand. It keeps its place in its account's order. Same event ID: receivers deduplicate by it.",
    params: deliveryParams,
    responses: { 202: ['Queued; the attempt shows in the deliveries.', deliveryResponse] },
    errors: {
      ...invalid('Invalid IDs'),
      404: '`webhook_endpoint_not_found` or `webhook_delivery_not_found`.',
    },
    handler: async ({ params, deps }) => ({
      status: 202,
      body: presentDelivery(await resendDelivery(deps, params.endpointId, params.deliveryId)),
    }),
  }),
];
