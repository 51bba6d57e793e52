import type { ErrorRequestHandler, Request } from 'express';
import type { z } from 'zod';
import type { Logger } from '../config/logger';
import { isDatabaseUnavailable } from '../db/client';
import { BillingError, errors } from '../domain/errors';

export { errors };

/** Parses with a zod schema or throws `invalid_request` with every issue. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw errors.invalidRequest(result.error.issues);
  return result.data;
}

// body-parser signals its failures with a `type` property.
function fromBodyParser(error: unknown): BillingError | null {
  switch ((error as { type?: unknown } | null)?.type) {
    case 'entity.too.large':
      return errors.payloadTooLarge();
    case 'entity.parse.failed':
      return errors.malformedJson();
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return errors.unsupportedMediaType();
    default:
      return null;
  }
}

// The route's pattern when one matched (`/codec/:token/:operation`), so that no path parameter
// (a codec token in the path) reaches a log line; the path itself otherwise.
function loggedPath(req: Request): string {
  const route = (req.route as { path?: unknown } | undefined)?.path;
  return typeof route === 'string' ? `${req.baseUrl}${route}` : req.path;
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known =
      error instanceof BillingError
        ? error
        : isDatabaseUnavailable(error)
          ? errors.databaseUnavailable()
          : fromBodyParser(error);
    if (known) {
      if (known.status >= 500) logger.warn({ code: known.code, path: loggedPath(req) }, known.message);
      res.status(known.status).json({
        error: {
          code: known.code,
          message: known.message,
          ...(known.details ? { details: known.details } : {}),
        },
      });
      return;
    }
    logger.error({ err: error, path: loggedPath(req), method: req.method }, 'unhandled error');
    res.status(500).json({ error: { code: 'internal_error', message: 'Something went wrong on our side.' } });
  };
}
