import type { ErrorRequestHandler, Request } from 'express';
import type { z } from 'zod';
import type { Logger } from '../config/logger';
import { isDatabaseUnavailable } from '../db/client';
import { BillingError, errors, type ErrorCode } from '../domain/errors';

export { errors };

/** Parses with a zod schema or throws `invalid_request` with every issue. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw errors.invalidRequest(result.error.issues);
  return result.data;
}

// A header the client chose, shown back only as short printable ASCII.
function shownEncoding(req: Request): string {
  const value = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
  return /^[\x20-\x7e]{1,40}$/.test(value) ? value : 'this one';
}

/**
 * The request could not be read, before any handler ran: its body (body-parser, the zlib stream
 * under it) or its path (the router decodes each path parameter). Always the client's mistake,
 * with nothing changed; this is the one place these failures get their status and code.
 */
function fromRequestReading(error: unknown, req: Request): BillingError | null {
  const failure = (error ?? {}) as { type?: unknown; status?: unknown; errno?: unknown };
  switch (failure.type) {
    case 'entity.too.large':
      return errors.payloadTooLarge();
    case 'entity.parse.failed':
      return errors.malformedJson();
    case 'encoding.unsupported':
      return errors.unsupportedContentEncoding(shownEncoding(req));
    case 'charset.unsupported':
      return errors.unsupportedMediaType();
    // The client went away, or sent fewer or more bytes than its Content-Length.
    case 'request.aborted':
    case 'request.size.invalid':
      return errors.malformedBody(null);
  }
  // A decompression stream's error (zlib's Z_DATA_ERROR, Z_BUF_ERROR, brotli's codes) reaches
  // here as body-parser passes it on: untyped, with status 400 and zlib's numeric errno.
  if (failure.type === undefined && failure.status === 400 && typeof failure.errno === 'number') {
    return errors.malformedBody(shownEncoding(req));
  }
  // The router's decodeURIComponent of a path parameter.
  if (error instanceof URIError && failure.status === 400) return errors.malformedPath();
  return null;
}

// The route's pattern when one matched (`/codec/:token/:operation`), so that no path parameter
// (a codec token in the path) reaches a log line; the path itself otherwise.
function loggedPath(req: Request): string {
  const route = (req.route as { path?: unknown } | undefined)?.path;
  return typeof route === 'string' ? `${req.baseUrl}${route}` : req.path;
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const unread = fromRequestReading(error, req);
    if (unread) {
      // Logged without the error, whose properties may hold the body (body-parser keeps it on
      // a JSON parse failure), and without an unmatched path, which may hold a codec token.
      logger.info(
        {
          code: unread.code,
          method: req.method,
          ...(unread.code === 'malformed_path' ? {} : { path: loggedPath(req) }),
          contentEncoding: req.get('content-encoding') === undefined ? undefined : shownEncoding(req),
        },
        'request refused before it was read',
      );
    }
    const known =
      error instanceof BillingError
        ? error
        : isDatabaseUnavailable(error)
          ? errors.databaseUnavailable()
          : unread;
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
    const code: ErrorCode = 'internal_error';
    res.status(500).json({ error: { code, message: 'Something went wrong on our side.' } });
  };
}
