import express, { type IRouter, type RequestHandler } from 'express';
import type { ApiRole } from '../../config/env';
import { requireRole } from '../auth';
import type { AppDependencies } from '../dependencies';
import { REPLAYED_HEADER } from './replays';
import type { Route } from './route';

/**
 * Serves each route at its path behind its role check (403 `insufficient_role` below it); the
 * API key itself is checked where api/app.ts mounts the API. A method and path declared twice
 * is a start-up error, not a route that silently never runs.
 */
export function mountRoutes(app: IRouter, routes: readonly Route[], deps: AppDependencies): void {
  const seen = new Set<string>();
  for (const route of routes) {
    const key = `${route.method.toUpperCase()} ${route.path}`;
    if (seen.has(key)) throw new Error(`${key} is declared twice`);
    seen.add(key);
    app[route.method](route.path, requireRole(route.role), async (req, res) => {
      const caller = { name: String(res.locals.apiKeyName), role: res.locals.apiKeyRole as ApiRole };
      const request = {
        params: req.params,
        query: req.query,
        body: req.body as unknown,
        header: (name: string) => req.get(name),
      };
      const { status, body, replayed } = await route.serve(request, caller, deps);
      if (replayed) res.set(REPLAYED_HEADER, 'true');
      if (body === undefined) res.status(status).end();
      else res.status(status).json(body);
    });
  }
}

/**
 * The JSON body parser of the API: the small default limit, or the larger one a route declares
 * (`bodyLimitBytes`, for a path without parameters), chosen before the body is read.
 */
export function jsonBodies(routes: readonly Route[], defaultLimitBytes: number): RequestHandler {
  const parse = (limit: number) => express.json({ limit, strict: true });
  const fallback = parse(defaultLimitBytes);
  const larger = new Map<string, RequestHandler>();
  for (const route of routes) {
    if (route.bodyLimitBytes === undefined) continue;
    if (route.path.includes(':'))
      throw new Error(`${route.path}: a larger body limit needs a path without parameters`);
    larger.set(`${route.method.toUpperCase()} ${route.path}`, parse(route.bodyLimitBytes));
  }
  return (req, res, next) => {
    const parser = larger.get(`${req.method} ${req.baseUrl}${req.path}`) ?? fallback;
    parser(req, res, next);
  };
}
