import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { ApiConfig } from '../../config/env';
import type { Logger } from '../../config/logger';
import type { Sql } from '../../db/client';
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  findWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  requestResend,
  updateWebhookEndpoint,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../../db/outbound-webhooks/endpoints';
import { DEFAULT_EVENT_TYPES, endpointUrlProblem, OUTBOUND_API_VERSION } from '../../domain/outbound-events';
import { kickWebhookDispatcher } from '../../temporal/outbound-webhook-kicker';
import { requireRole } from '../auth';
import { decodeCursor, pageOf } from '../cursors';
import { errors, parseOrThrow } from '../errors';
import {
  createWebhookEndpointBody,
  updateWebhookEndpointBody,
  webhookDeliveriesQuery,
  webhookDeliveryParams,
  webhookEndpointParams,
} from '../webhook-endpoint-schemas';

const present = (endpoint: WebhookEndpoint) => ({
  id: endpoint.id,
  url: endpoint.url,
  description: endpoint.description,
  eventTypes: endpoint.eventTypes,
  enabled: endpoint.enabled,
  apiVersion: OUTBOUND_API_VERSION,
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

/**
 * Clients' webhook endpoints: register (the secret is answered once), list, read, change, pause,
 * delete; an endpoint's deliveries with their attempts; a re-send by hand. Reading is open to
 * read keys; anything that changes where events go, or sends one again, needs an admin key.
 */
export function webhookEndpointsRouter(deps: {
  sql: Sql;
  temporal: Client;
  config: ApiConfig;
  logger: Logger;
}): Router {
  const { sql } = deps;
  const router = Router();
  const production = deps.config.nodeEnv === 'production';

  const checkUrl = (url: string) => {
    const problem = endpointUrlProblem(url, production);
    if (problem) throw errors.webhookUrlNotAllowed(problem);
  };

  // The change is committed either way; a dispatcher that is not kicked looks on its own timer.
  async function kick(endpointId: string): Promise<void> {
    try {
      await kickWebhookDispatcher(deps.temporal, deps.config.temporal.taskQueue, endpointId);
    } catch (error) {
      deps.logger.warn({ err: error, endpointId }, 'webhook dispatcher not kicked');
    }
  }

  async function requireEndpoint(endpointId: string): Promise<WebhookEndpoint> {
    const endpoint = await findWebhookEndpoint(sql, endpointId);
    if (!endpoint) throw errors.webhookEndpointNotFound(endpointId);
    return endpoint;
  }

  router.post('/v1/webhook-endpoints', requireRole('admin'), async (req, res) => {
    const body = parseOrThrow(createWebhookEndpointBody, req.body);
    checkUrl(body.url);
    const created = await createWebhookEndpoint(sql, {
      url: body.url,
      description: body.description ?? null,
      eventTypes: body.eventTypes ?? [...DEFAULT_EVENT_TYPES],
    });
    await kick(created.id);
    res.status(201).json({ ...present(created), secret: created.secret });
  });

  router.get('/v1/webhook-endpoints', requireRole('read'), async (_req, res) => {
    res.json({ endpoints: (await listWebhookEndpoints(sql)).map(present) });
  });

  router.get('/v1/webhook-endpoints/:endpointId', requireRole('read'), async (req, res) => {
    const { endpointId } = parseOrThrow(webhookEndpointParams, req.params);
    res.json(present(await requireEndpoint(endpointId)));
  });

  router.patch('/v1/webhook-endpoints/:endpointId', requireRole('admin'), async (req, res) => {
    const { endpointId } = parseOrThrow(webhookEndpointParams, req.params);
    const body = parseOrThrow(updateWebhookEndpointBody, req.body);
    if (body.url !== undefined) checkUrl(body.url);
    const updated = await updateWebhookEndpoint(sql, endpointId, body);
    if (!updated) throw errors.webhookEndpointNotFound(endpointId);
    if (updated.enabled) await kick(endpointId);
    res.json(present(updated));
  });

  router.delete('/v1/webhook-endpoints/:endpointId', requireRole('admin'), async (req, res) => {
    const { endpointId } = parseOrThrow(webhookEndpointParams, req.params);
    if (!(await deleteWebhookEndpoint(sql, endpointId))) throw errors.webhookEndpointNotFound(endpointId);
    // Its dispatcher finds the endpoint gone and ends.
    await kick(endpointId);
    res.json({ id: endpointId, deleted: true });
  });

  router.get('/v1/webhook-endpoints/:endpointId/deliveries', requireRole('read'), async (req, res) => {
    const { endpointId } = parseOrThrow(webhookEndpointParams, req.params);
    const query = parseOrThrow(webhookDeliveriesQuery, req.query);
    await requireEndpoint(endpointId);
    const rows = await listWebhookDeliveries(sql, endpointId, {
      limit: query.limit + 1,
      beforeId: decodeCursor(query.cursor),
      status: query.status,
    });
    const { items, nextCursor } = pageOf(rows, query.limit);
    res.json({ deliveries: items.map(presentDelivery), nextCursor });
  });

  router.post(
    '/v1/webhook-endpoints/:endpointId/deliveries/:deliveryId/resend',
    requireRole('admin'),
    async (req, res) => {
      const { endpointId, deliveryId } = parseOrThrow(webhookDeliveryParams, req.params);
      await requireEndpoint(endpointId);
      const delivery = await requestResend(sql, endpointId, deliveryId);
      if (!delivery) throw errors.webhookDeliveryNotFound(deliveryId);
      await kick(endpointId);
      res.status(202).json(presentDelivery(delivery));
    },
  );

  return router;
}
