import type { z } from 'zod';
import { failureTypeOf } from './failure-types';

/**
 * One vocabulary of failures for the whole service: a stable snake_case code, the HTTP status
 * it answers with, and whether retrying can help. Code throws these; the API maps them once (its
 * error middleware) and the worker once (an activity interceptor: a failure that retrying cannot
 * fix becomes a non-retryable Temporal failure whose type is the code in PascalCase).
 */
export class BillingError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Whether the same request may succeed later: outages yes, bad input and missing rows no. */
    readonly retryable = status >= 500,
  ) {
    super(message);
    this.name = 'BillingError';
  }

  /** The Temporal failure type of this error, e.g. `account_not_found` → `AccountNotFound`. */
  get failureType(): string {
    return failureTypeOf(this.code);
  }
}

/** What an idempotency key was first used for, told back when it comes again with other parameters. */
export interface FirstUse {
  /** When, if the row that the key made records it. */
  at?: Date;
  /** The row the key made, in words: `ledger entry 42 (a debit of 5 credits)`. */
  made: string;
  /** The same, for programs: its ID and the parameters it was made with. */
  details: Record<string, unknown>;
}

export const errors = {
  missingSignature: () =>
    new BillingError(400, 'missing_signature', 'The Stripe-Signature header is required.'),
  invalidSignature: () =>
    new BillingError(400, 'invalid_signature', 'The Stripe-Signature header does not match the payload.'),
  signatureExpired: () =>
    new BillingError(
      400,
      'signature_expired',
      'The Stripe-Signature timestamp is outside the tolerance window.',
    ),
  malformedJson: () => new BillingError(400, 'malformed_json', 'The request body is not valid JSON.'),
  invalidEvent: (detail: string) =>
    new BillingError(400, 'invalid_event', `The event is not a valid Stripe event: ${detail}`),
  invalidRequest: (issues: z.core.$ZodIssue[]) =>
    new BillingError(
      400,
      'invalid_request',
      issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '),
      issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    ),
  unauthorized: () =>
    new BillingError(401, 'unauthorized', 'A valid API key is required: Authorization: Bearer <key>.'),
  insufficientRole: (needed: string, has: string) =>
    new BillingError(
      403,
      'insufficient_role',
      `This route needs an API key with the ${needed} role; this key has the ${has} role.`,
      { needed, has },
    ),
  reviewNotFound: (workflowId: string) =>
    new BillingError(
      404,
      'review_not_found',
      `No purchase or invoice workflow ${workflowId} exists that could wait for review.`,
    ),
  notHeldForReview: (workflowId: string, stage: string | null) =>
    new BillingError(
      409,
      'not_held_for_review',
      `Workflow ${workflowId} is not held for review (it is ${stage ?? 'closed'}); nothing was sent.`,
      { stage },
    ),
  reviewInProgress: (workflowId: string) =>
    new BillingError(
      409,
      'review_in_progress',
      `A decision sent to workflow ${workflowId} is not applied yet; look again once its worker has run it.`,
    ),
  accountNotFound: (id: string) => new BillingError(404, 'account_not_found', `Account ${id} was not found.`),
  packNotFound: (id: string) => new BillingError(404, 'pack_not_found', `Pack ${id} is not for sale.`),
  purchaseNotFound: (id: string) =>
    new BillingError(404, 'purchase_not_found', `Purchase ${id} was not found.`),
  invalidValue: (path: string, message: string) =>
    new BillingError(400, 'invalid_request', `${path}: ${message}`, [{ path, message }]),
  balanceOutOfRange: (accountId: string) =>
    new BillingError(
      422,
      'balance_out_of_range',
      `The movement would take the balance of account ${accountId} past ±2^53 − 1 credits.`,
    ),
  insufficientCredits: (available: number, amount: number) =>
    new BillingError(
      402,
      'insufficient_credits',
      `${available} credits are available; ${amount} would take the account below zero.`,
    ),
  grantNotFound: (id: number) => new BillingError(404, 'grant_not_found', `Grant ${id} was not found.`),
  reservationNotFound: (id: string) =>
    new BillingError(404, 'reservation_not_found', `Reservation ${id} was not found.`),
  reservationSettled: (id: string, status: string) =>
    new BillingError(
      409,
      'reservation_settled',
      `Reservation ${id} is ${status}; it can no longer be captured.`,
    ),
  captureExceedsHold: (held: number, amount: number) =>
    new BillingError(
      422,
      'capture_exceeds_hold',
      `The reservation holds ${held} credits; ${amount} cannot be captured.`,
    ),
  /**
   * Keys belong to one account, so what is told of the first use is the caller's own: which row
   * the key made and with what parameters, so that a caller can see it reused a key of its own.
   */
  idempotencyKeyReused: (first: FirstUse) =>
    new BillingError(
      409,
      'idempotency_key_reused',
      `This idempotency key was first used${first.at ? ` at ${first.at.toISOString()}` : ''} for ${first.made}, ` +
        'with other parameters: the same key replays that request only with the same parameters; a new request needs a new key.',
      { ...(first.at ? { firstUsedAt: first.at.toISOString() } : {}), ...first.details },
    ),
  redirectNotAllowed: (field: string, host: string) =>
    new BillingError(422, 'redirect_url_not_allowed', `${field}: ${host} is not an allowed redirect host.`),
  webhookEndpointNotFound: (id: string) =>
    new BillingError(404, 'webhook_endpoint_not_found', `Webhook endpoint ${id} was not found.`),
  webhookDeliveryNotFound: (id: number) =>
    new BillingError(404, 'webhook_delivery_not_found', `Webhook delivery ${id} was not found.`),
  webhookUrlNotAllowed: (problem: string) =>
    new BillingError(422, 'webhook_url_not_allowed', `url: ${problem}`),
  stripeFailed: (stripeCode: string | undefined, message: string) =>
    new BillingError(502, 'stripe_error', `Stripe refused the request: ${message}`, {
      stripeCode: stripeCode ?? null,
    }),
  stripeNotConfigured: () =>
    new BillingError(
      503,
      'stripe_not_configured',
      'STRIPE_SECRET_KEY is not set, so checkout sessions cannot be created.',
    ),
  outboxMessageNotFound: (key: string) =>
    new BillingError(404, 'outbox_message_not_found', `No outbox message has the key ${key}.`),
  smtpRefused: (message: string) =>
    new BillingError(
      502,
      'smtp_permanent_error',
      `The SMTP server refused the email: ${message}`,
      undefined,
      false,
    ),
  // A try inside a workflow task gave up (stalled) or did not start (deferred); the email's
  // retried delivery sends it.
  smtpTryStalled: () =>
    new BillingError(
      503,
      'smtp_try_stalled',
      'SMTP did not answer in time; the email goes to its retried delivery.',
    ),
  smtpTryDeferred: () =>
    new BillingError(
      503,
      'smtp_try_deferred',
      'SMTP failed or stalled moments ago; the email goes to its retried delivery.',
    ),
  databaseUnavailable: () =>
    new BillingError(503, 'database_unavailable', 'The database is unavailable; retry later.'),
  routeNotFound: () => new BillingError(404, 'route_not_found', 'No such route.'),
  codecUnauthorized: () =>
    new BillingError(
      401,
      'unauthorized',
      'A codec token (or an admin API key) is required: Authorization: Bearer <token>, or the endpoint /codec/<token>.',
    ),
  codecNotConfigured: () =>
    new BillingError(404, 'codec_not_configured', 'The codec server is off: set TEMPORAL_CODEC_TOKEN.'),
  originNotAllowed: (origin: string) =>
    new BillingError(
      403,
      'origin_not_allowed',
      `Origin ${origin.slice(0, 200)} may not call the codec server (TEMPORAL_UI_ORIGIN).`,
    ),
  namespaceNotServed: (namespace: string, served: string) =>
    new BillingError(
      403,
      'namespace_not_served',
      `This codec server serves the namespace ${served}, not ${namespace.slice(0, 200)}.`,
    ),
  invalidPayload: (index: number, operation: 'encode' | 'decode', reason: string) =>
    new BillingError(400, 'invalid_payload', `Payload ${index} could not be ${operation}d: ${reason}`),
  payloadTooLarge: () => new BillingError(413, 'payload_too_large', 'The request body is too large.'),
  malformedBody: (contentEncoding: string | null) =>
    new BillingError(
      400,
      'malformed_body',
      contentEncoding === null
        ? 'The request body could not be read whole.'
        : `The request body is not valid ${contentEncoding}, as its Content-Encoding says.`,
    ),
  unsupportedContentEncoding: (contentEncoding: string) =>
    new BillingError(
      415,
      'unsupported_content_encoding',
      `Content-Encoding ${contentEncoding} is not supported: send the body as it is, or as gzip, deflate or br.`,
    ),
  malformedPath: () =>
    new BillingError(400, 'malformed_path', 'The path is not valid percent-encoded UTF-8.'),
  unsupportedMediaType: () =>
    new BillingError(415, 'unsupported_media_type', 'Send the body as application/json (UTF-8).'),
  temporalUnavailable: () =>
    new BillingError(503, 'temporal_unavailable', 'The workflow service is unavailable; retry later.'),
  notReady: (checks: Record<string, string>) =>
    new BillingError(503, 'not_ready', 'A dependency is not available.', checks),
};
