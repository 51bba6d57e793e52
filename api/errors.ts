import type { ErrorRequestHandler } from 'express';
import { z } from 'zod';
import type { Logger } from '../config/logger';

/**
 * Every error the API answers, in one catalogue: `{"error": {"code", "message"}}` with a stable
 * snake_case code. Handlers throw these; one middleware turns them into responses.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const errors = {
  missingSignature: () => new ApiError(400, 'missing_signature', 'The Stripe-Signature header is required.'),
  invalidSignature: () =>
    new ApiError(400, 'invalid_signature', 'The Stripe-Signature header does not match the payload.'),
  signatureExpired: () =>
    new ApiError(400, 'signature_expired', 'The Stripe-Signature timestamp is outside the tolerance window.'),
  malformedJson: () => new ApiError(400, 'malformed_json', 'The request body is not valid JSON.'),
  invalidEvent: (detail: string) =>
    new ApiError(400, 'invalid_event', `The event is not a valid Stripe event: ${detail}`),
  invalidRequest: (issues: z.core.$ZodIssue[]) =>
    new ApiError(
      400,
      'invalid_request',
      issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '),
      issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    ),
  unauthorized: () =>
    new ApiError(401, 'unauthorized', 'A valid API key is required: Authorization: Bearer <key>.'),
  accountNotFound: (id: string) => new ApiError(404, 'account_not_found', `Account ${id} was not found.`),
  packNotFound: (id: string) => new ApiError(404, 'pack_not_found', `Pack ${id} is not for sale.`),
  purchaseNotFound: (id: string) => new ApiError(404, 'purchase_not_found', `Purchase ${id} was not found.`),
  invalidValue: (path: string, message: string) =>
    new ApiError(400, 'invalid_request', `${path}: ${message}`, [{ path, message }]),
  insufficientCredits: (available: number, amount: number) =>
    new ApiError(
      402,
      'insufficient_credits',
      `${available} credits are available; ${amount} would take the account below zero.`,
    ),
  grantNotFound: (id: number) => new ApiError(404, 'grant_not_found', `Grant ${id} was not found.`),
  reservationNotFound: (id: string) =>
    new ApiError(404, 'reservation_not_found', `Reservation ${id} was not found.`),
  reservationSettled: (id: string, status: string) =>
    new ApiError(409, 'reservation_settled', `Reservation ${id} is ${status}; it can no longer be captured.`),
  captureExceedsHold: (held: number, amount: number) =>
    new ApiError(
      422,
      'capture_exceeds_hold',
      `The reservation holds ${held} credits; ${amount} cannot be captured.`,
    ),
  idempotencyKeyReused: () =>
    new ApiError(
      409,
      'idempotency_key_reused',
      'This idempotency key was already used with other parameters.',
    ),
  redirectNotAllowed: (field: string, host: string) =>
    new ApiError(422, 'redirect_url_not_allowed', `${field}: ${host} is not an allowed redirect host.`),
  stripeFailed: (stripeCode: string | undefined, message: string) =>
    new ApiError(502, 'stripe_error', `Stripe refused the request: ${message}`, {
      stripeCode: stripeCode ?? null,
    }),
  stripeNotConfigured: () =>
    new ApiError(
      503,
      'stripe_not_configured',
      'STRIPE_SECRET_KEY is not set, so checkout sessions cannot be created.',
    ),
  routeNotFound: () => new ApiError(404, 'route_not_found', 'No such route.'),
  payloadTooLarge: () => new ApiError(413, 'payload_too_large', 'The request body is too large.'),
  unsupportedMediaType: () =>
    new ApiError(415, 'unsupported_media_type', 'Send the body as application/json (UTF-8).'),
  temporalUnavailable: () =>
    new ApiError(503, 'temporal_unavailable', 'The workflow service is unavailable; retry later.'),
  notReady: (checks: Record<string, string>) =>
    new ApiError(503, 'not_ready', 'A dependency is not available.', checks),
};

/** Parses with a zod schema or throws `invalid_request` with every issue. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw errors.invalidRequest(result.error.issues);
  return result.data;
}

// body-parser signals its failures with a `type` property.
function fromBodyParser(error: unknown): ApiError | null {
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

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = error instanceof ApiError ? error : fromBodyParser(error);
    if (known) {
      if (known.status >= 500) logger.warn({ code: known.code, path: req.path }, known.message);
      res.status(known.status).json({
        error: {
          code: known.code,
          message: known.message,
          ...(known.details ? { details: known.details } : {}),
        },
      });
      return;
    }
    logger.error({ err: error, path: req.path, method: req.method }, 'unhandled error');
    res.status(500).json({ error: { code: 'internal_error', message: 'Something went wrong on our side.' } });
  };
}
