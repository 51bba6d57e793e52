import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';
import { requireApiKey } from './auth';
import { codecRouter } from './codec-server';
import type { AppDependencies } from './dependencies';
import { errorHandler, errors } from './errors';
import { jsonBodies, mountRoutes } from './http/express';
import { createOpenApiDocument } from './http/openapi';
import { healthRouter } from './routes/health';
import { API_ROUTES, DOCUMENTED_ROUTES } from './routes/index';
import { webhookRouter } from './webhook';

const JSON_BODY_LIMIT_BYTES = 32 * 1024;

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

  const openApi = createOpenApiDocument(deps.config.publicBaseUrl, DOCUMENTED_ROUTES);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openApi, { customSiteTitle: 'Credits billing API' }));

  app.use('/v1', requireApiKey(deps.config.apiKeys), jsonBodies(API_ROUTES, JSON_BODY_LIMIT_BYTES));
  mountRoutes(app, API_ROUTES, deps);

  app.use(() => {
    throw errors.routeNotFound();
  });
  app.use(errorHandler(deps.logger));
  return app;
}
