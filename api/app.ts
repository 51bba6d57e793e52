import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import type Stripe from 'stripe';
import swaggerUi from 'swagger-ui-express';
import type { ApiConfig } from '../config/env';
import type { Logger } from '../config/logger';
import type { Sql } from '../db/client';
import { requireApiKey } from './auth';
import { codecRouter } from './codec-server';
import { errorHandler, errors } from './errors';
import type { Metrics } from './metrics';
import { createOpenApiDocument } from './openapi';
import { accountsRouter } from './routes/accounts';
import { auditRouter } from './routes/audit';
import { checkoutRouter } from './routes/checkout';
import { healthRouter } from './routes/health';
import { grantsRouter } from './routes/grants';
import { packsRouter } from './routes/packs';
import { purchasesRouter } from './routes/purchases';
import { rejectedEventsRouter } from './routes/rejected-events';
import { reservationsRouter } from './routes/reservations';
import { reviewsRouter } from './routes/reviews';
import { topupsRouter } from './routes/topups';
import { webhookEndpointsRouter } from './routes/webhook-endpoints';
import { webhookRouter } from './webhook';

export interface AppDependencies {
  config: ApiConfig;
  sql: Sql;
  temporal: Client;
  /** Null when no Stripe key is configured: checkout then answers `stripe_not_configured`. */
  stripe: Stripe | null;
  logger: Logger;
  metrics: Metrics;
}

const JSON_BODY_LIMIT = '32kb';

export function createApp(deps: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.use((req, res, next) => {
    const stop = deps.metrics.httpDuration.startTimer({ method: req.method });
    res.on('finish', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      stop({ route: typeof route === 'string' ? route : 'unmatched', status: String(res.statusCode) });
    });
    next();
  });

  // Before any JSON parser: the webhook needs the exact bytes Stripe signed.
  app.use(webhookRouter(deps));
  app.use(healthRouter(deps));
  // Temporal's remote codec (its own auth, CORS and body limit), for the Temporal UI and CLI.
  app.use(codecRouter(deps));

  const openApi = createOpenApiDocument(deps.config.publicBaseUrl);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApi, { customSiteTitle: 'Credits billing API' }));

  app.use('/v1', requireApiKey(deps.config.apiKeys), express.json({ limit: JSON_BODY_LIMIT, strict: true }));
  app.use(accountsRouter(deps));
  app.use(grantsRouter(deps));
  app.use(reservationsRouter(deps));
  app.use(rejectedEventsRouter(deps));
  app.use(reviewsRouter(deps));
  app.use(auditRouter(deps));
  app.use(packsRouter(deps));
  app.use(purchasesRouter(deps));
  app.use(checkoutRouter(deps));
  app.use(topupsRouter(deps));
  app.use(webhookEndpointsRouter(deps));

  app.use(() => {
    throw errors.routeNotFound();
  });
  app.use(errorHandler(deps.logger));
  return app;
}
