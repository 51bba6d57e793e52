import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Sql } from '../../db/client';
import { errors } from '../errors';
import type { DocumentedRoute } from '../http/route';
import type { Metrics } from '../metrics';

const CHECK_TIMEOUT_MS = 2000;

async function check(run: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([run(), timeout]);
    return 'ok';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}

// Probes and metrics need no key: orchestrators and Prometheus call them.
const liveness: DocumentedRoute = {
  method: 'get',
  path: '/healthz',
  summary: 'Liveness',
  security: [],
  responses: { 200: 'The process is up.' },
  errors: {},
};
const readiness: DocumentedRoute = {
  method: 'get',
  path: '/readyz',
  summary: 'Readiness: PostgreSQL and Temporal answer',
  security: [],
  responses: { 200: 'Ready.' },
  errors: { 503: '`not_ready`, with each check.' },
};
const metricsRoute: DocumentedRoute = {
  method: 'get',
  path: '/metrics',
  summary: 'Prometheus metrics',
  security: [],
  responses: { 200: 'Text format.' },
  errors: {},
};
export const healthRoutes = [liveness, readiness, metricsRoute];

export function healthRouter({
  sql,
  temporal,
  metrics,
}: {
  sql: Sql;
  temporal: Client;
  metrics: Metrics;
}): Router {
  const router = Router();

  router.get(liveness.path, (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get(readiness.path, async (_req, res) => {
    const [postgres, temporalCheck] = await Promise.all([
      check(() => sql`SELECT 1`),
      check(() =>
        temporal.withDeadline(Date.now() + CHECK_TIMEOUT_MS, () =>
          temporal.workflowService.getSystemInfo({}),
        ),
      ),
    ]);
    const checks = { postgres, temporal: temporalCheck };
    if (postgres !== 'ok' || temporalCheck !== 'ok') throw errors.notReady(checks);
    res.json({ status: 'ready', checks });
  });

  router.get(metricsRoute.path, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return router;
}
