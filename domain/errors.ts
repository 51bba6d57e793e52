import type { z } from 'zod';
import { ERROR_CATALOGUE, retryableCode, type ErrorCode } from './error-codes';
import { failureTypeOf } from './failure-types';

export type { ErrorCode } from './error-codes';

/**
 * One vocabulary of failures for the whole service: a code of the catalogue (domain/error-codes.ts),
 * which says the HTTP status it answers with and whether retrying can help. Code throws these;
 * the API maps them once (its error middleware) and the worker once (an activity interceptor: a
 * failure that retrying cannot fix becomes a non-retryable Temporal failure whose type is the
 * code in PascalCase).
 */
export class BillingError extends Error {
  readonly status: number;
  /** Whether the same request may succeed later: outages yes, bad input and missing rows no. */
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'BillingError';
    this.status = ERROR_CATALOGUE[code].status;
    this.retryable = retryableCode(code);
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
  missingSignature: () => new BillingError('missing_signature', 'The Stripe-Signature header is required.'),
  invalidSignature: () =>
    new BillingError('invalid_signature', 'The Stripe-Signature header does not match the payload.'),
  signatureExpired: () =>
    new BillingError('signature_expired', 'The Stripe-Signature timestamp is outside the tolerance window.'),
  malformedJson: () => new BillingError('malformed_json', 'The request body is not valid JSON.'),
  invalidEvent: (detail: string) =>
    new BillingError('invalid_event', `The event is not a valid Stripe event: ${detail}`),
  invalidRequest: (issues: z.core.$ZodIssue[]) =>
    new BillingError(
      'invalid_request',
      issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; '),
      issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
    ),
  unauthorized: () =>
    new BillingError('unauthorized', 'A valid API key is required: Authorization: Bearer <key>.'),
  insufficientRole: (needed: string, has: string) =>
    new BillingError(
      'insufficient_role',
      `This route needs an API key with the ${needed} role; this key has the ${has} role.`,
      { needed, has },
    ),
  reviewNotFound: (workflowId: string) =>
    new BillingError(
      'review_not_found',
      `No purchase or invoice workflow ${workflowId} exists that could wait for review.`,
    ),
  notHeldForReview: (workflowId: string, stage: string | null) =>
    new BillingError(
      'not_held_for_review',
      `Workflow ${workflowId} is not held for review (it is ${stage ?? 'closed'}); nothing was sent.`,
      { stage },
    ),
  reviewInProgress: (workflowId: string) =>
    new BillingError(
      'review_in_progress',
      `Workflow ${workflowId} is applying another decision; look at it again once that one is answered.`,
    ),
  reviewCreditsRequired: (workflowId: string) =>
    new BillingError(
      'review_credits_required',
      `The catalog knows no pack or plan for workflow ${workflowId}: an approval must say how many credits to grant.`,
    ),
  reviewBuyerUnknown: (workflowId: string) =>
    new BillingError(
      'review_buyer_unknown',
      `Nobody is known to have paid for workflow ${workflowId}, so an approval would credit no one; reject it instead.`,
    ),
  /** `outcome` is the run's answer: its stage, why it was not applied, the audit entry. */
  reviewNotApplied: (workflowId: string, reason: string, outcome: Record<string, unknown>) =>
    new BillingError(
      'review_not_applied',
      `Workflow ${workflowId} took the decision but could not apply it: ${reason}. It is still held for review.`,
      outcome,
    ),
  reviewNotDelivered: (workflowId: string, waitedMs: number) =>
    new BillingError(
      'review_not_delivered',
      `The decision on workflow ${workflowId} was not answered within ${waitedMs} ms: no worker has taken it in ` +
        'yet, or it is still being applied. Temporal keeps it and the run applies (or refuses) it when its worker ' +
        'is back: look at the desk before deciding again.',
    ),
  accountNotFound: (id: string) => new BillingError('account_not_found', `Account ${id} was not found.`),
  packNotFound: (id: string) => new BillingError('pack_not_found', `Pack ${id} is not for sale.`),
  purchaseNotFound: (id: string) => new BillingError('purchase_not_found', `Purchase ${id} was not found.`),
  featureNotFound: (key: string) =>
    new BillingError('feature_not_found', `Feature ${key} is not in the active catalogue.`),
  invalidValue: (path: string, message: string) =>
    new BillingError('invalid_request', `${path}: ${message}`, [{ path, message }]),
  balanceOutOfRange: (accountId: string) =>
    new BillingError(
      'balance_out_of_range',
      `The movement would take the balance of account ${accountId} past ±2^53 − 1 credits.`,
    ),
  insufficientCredits: (available: number, amount: number) =>
    new BillingError(
      'insufficient_credits',
      `${available} credits are available; ${amount} would take the account below zero.`,
    ),
  grantNotFound: (id: number) => new BillingError('grant_not_found', `Grant ${id} was not found.`),
  reservationNotFound: (id: string) =>
    new BillingError('reservation_not_found', `Reservation ${id} was not found.`),
  reservationSettled: (id: string, status: string) =>
    new BillingError('reservation_settled', `Reservation ${id} is ${status}; it can no longer be captured.`),
  captureExceedsHold: (held: number, amount: number) =>
    new BillingError(
      'capture_exceeds_hold',
      `The reservation holds ${held} credits; ${amount} cannot be captured.`,
    ),
  /**
   * Keys belong to one account, so what is told of the first use is the caller's own: which row
   * the key made and with what parameters, so that a caller can see it reused a key of its own.
   */
  idempotencyKeyReused: (first: FirstUse) =>
    new BillingError(
      'idempotency_key_reused',
      `This idempotency key was first used${first.at ? ` at ${first.at.toISOString()}` : ''} for ${first.made}, ` +
        'with other parameters: the same key replays that request only with the same parameters; a new request needs a new key.',
      { ...(first.at ? { firstUsedAt: first.at.toISOString() } : {}), ...first.details },
    ),
  redirectNotAllowed: (field: string, host: string) =>
    new BillingError('redirect_url_not_allowed', `${field}: ${host} is not an allowed redirect host.`),
  webhookEndpointNotFound: (id: string) =>
    new BillingError('webhook_endpoint_not_found', `Webhook endpoint ${id} was not found.`),
  webhookDeliveryNotFound: (id: number) =>
    new BillingError('webhook_delivery_not_found', `Webhook delivery ${id} was not found.`),
  webhookUrlNotAllowed: (problem: string) => new BillingError('webhook_url_not_allowed', `url: ${problem}`),
  stripeFailed: (stripeCode: string | undefined, message: string) =>
    new BillingError('stripe_error', `Stripe refused the request: ${message}`, {
      stripeCode: stripeCode ?? null,
    }),
  /** `what` is the request (`the request`, `to list events (401)`), `reason` Stripe's message. */
  stripeRefused: (what: string, reason: string) =>
    new BillingError('stripe_refused', `Stripe refused ${what}: ${reason}`),
  stripeNotConfigured: () =>
    new BillingError(
      'stripe_not_configured',
      'STRIPE_SECRET_KEY is not set, so checkout sessions cannot be created.',
    ),
  reconcileNotConfigured: () =>
    new BillingError(
      'reconcile_not_configured',
      'reconciliation needs STRIPE_SECRET_KEY: without it the worker cannot list Stripe events',
    ),
  invalidPage: () => new BillingError('invalid_page', 'no such slice or type group'),
  outboxMessageNotFound: (key: string) =>
    new BillingError('outbox_message_not_found', `No outbox message has the key ${key}.`),
  smtpRefused: (message: string) =>
    new BillingError('smtp_permanent_error', `The SMTP server refused the email: ${message}`),
  // A try inside a workflow task gave up (stalled) or did not start (deferred); the email's
  // retried delivery sends it.
  smtpTryStalled: () =>
    new BillingError(
      'smtp_try_stalled',
      'SMTP did not answer in time; the email goes to its retried delivery.',
    ),
  smtpTryDeferred: () =>
    new BillingError(
      'smtp_try_deferred',
      'SMTP failed or stalled moments ago; the email goes to its retried delivery.',
    ),
  databaseUnavailable: () =>
    new BillingError('database_unavailable', 'The database is unavailable; retry later.'),
  routeNotFound: () => new BillingError('route_not_found', 'No such route.'),
  codecUnauthorized: () =>
    new BillingError(
      'unauthorized',
      'A codec token (or an admin API key) is required: Authorization: Bearer <token>, or the endpoint /codec/<token>.',
    ),
  codecNotConfigured: () =>
    new BillingError('codec_not_configured', 'The codec server is off: set TEMPORAL_CODEC_TOKEN.'),
  originNotAllowed: (origin: string) =>
    new BillingError(
      'origin_not_allowed',
      `Origin ${origin.slice(0, 200)} may not call the codec server (TEMPORAL_UI_ORIGIN).`,
    ),
  namespaceNotServed: (namespace: string, served: string) =>
    new BillingError(
      'namespace_not_served',
      `This codec server serves the namespace ${served}, not ${namespace.slice(0, 200)}.`,
    ),
  invalidPayload: (index: number, operation: 'encode' | 'decode', reason: string) =>
    new BillingError('invalid_payload', `Payload ${index} could not be ${operation}d: ${reason}`),
  payloadTooLarge: () => new BillingError('payload_too_large', 'The request body is too large.'),
  malformedBody: (contentEncoding: string | null) =>
    new BillingError(
      'malformed_body',
      contentEncoding === null
        ? 'The request body could not be read whole.'
        : `The request body is not valid ${contentEncoding}, as its Content-Encoding says.`,
    ),
  unsupportedContentEncoding: (contentEncoding: string) =>
    new BillingError(
      'unsupported_content_encoding',
      `Content-Encoding ${contentEncoding} is not supported: send the body as it is, or as gzip, deflate or br.`,
    ),
  malformedPath: () => new BillingError('malformed_path', 'The path is not valid percent-encoded UTF-8.'),
  unsupportedMediaType: () =>
    new BillingError('unsupported_media_type', 'Send the body as application/json (UTF-8).'),
  temporalUnavailable: () =>
    new BillingError('temporal_unavailable', 'The workflow service is unavailable; retry later.'),
  notReady: (checks: Record<string, string>) =>
    new BillingError('not_ready', 'A dependency is not available.', checks),
};
