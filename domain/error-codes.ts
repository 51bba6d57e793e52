/**
 * The closed list of the service's error codes: each stable snake_case code, the HTTP status it
 * answers with, and, where it differs from "a 5xx may heal, a 4xx will not", whether retrying can
 * help. A code outside this list does not type-check; a code's status is said here once.
 */
export const ERROR_CATALOGUE = {
  // Stripe's webhook and the request body
  missing_signature: { status: 400 },
  invalid_signature: { status: 400 },
  signature_expired: { status: 400 },
  malformed_json: { status: 400 },
  invalid_event: { status: 400 },
  invalid_request: { status: 400 },
  payload_too_large: { status: 413 },
  unsupported_media_type: { status: 415 },
  malformed_body: { status: 400 },
  unsupported_content_encoding: { status: 415 },
  malformed_path: { status: 400 },
  route_not_found: { status: 404 },
  // Who may call
  unauthorized: { status: 401 },
  insufficient_role: { status: 403 },
  // Reviews
  review_not_found: { status: 404 },
  not_held_for_review: { status: 409 },
  review_in_progress: { status: 409 },
  /** An approval of a payment whose pack or plan the catalog does not know, without `credits`. */
  review_credits_required: { status: 422 },
  /** An approval of a payment nobody is known to have made: only a rejection closes it. */
  review_buyer_unknown: { status: 409 },
  /** The run took the decision but could not apply it (the ledger refused the grant): still held. */
  review_not_applied: { status: 422 },
  /** The run did not answer the decision before the deadline (no worker yet, or still applying it). */
  review_not_delivered: { status: 503 },
  // Accounts, purchases and credits
  account_not_found: { status: 404 },
  pack_not_found: { status: 404 },
  purchase_not_found: { status: 404 },
  balance_out_of_range: { status: 422 },
  insufficient_credits: { status: 402 },
  grant_not_found: { status: 404 },
  reservation_not_found: { status: 404 },
  reservation_settled: { status: 409 },
  capture_exceeds_hold: { status: 422 },
  idempotency_key_reused: { status: 409 },
  redirect_url_not_allowed: { status: 422 },
  // Usage
  feature_not_found: { status: 404 },
  /** A usage event ID recorded before with another body. */
  event_id_reused: { status: 409 },
  // Automatic top-ups and low-balance notices
  low_balance_not_set: { status: 404 },
  auto_topup_not_set: { status: 404 },
  // Outbound webhooks
  webhook_endpoint_not_found: { status: 404 },
  webhook_delivery_not_found: { status: 404 },
  webhook_url_not_allowed: { status: 422 },
  // Stripe, as the service calls it
  stripe_error: { status: 502 },
  /** Stripe refused the request itself (bad key, no permission, invalid parameters): no retry heals it. */
  stripe_refused: { status: 502, retryable: false },
  stripe_not_configured: { status: 503 },
  // Reconciliation with Stripe's Events API
  reconcile_not_configured: { status: 503, retryable: false },
  /** A page of a run that names no slice or type group of it: a bug, not an outage. */
  invalid_page: { status: 500, retryable: false },
  // Email
  outbox_message_not_found: { status: 404 },
  smtp_permanent_error: { status: 502, retryable: false },
  smtp_try_stalled: { status: 503 },
  smtp_try_deferred: { status: 503 },
  // The codec server
  codec_not_configured: { status: 404 },
  origin_not_allowed: { status: 403 },
  namespace_not_served: { status: 403 },
  invalid_payload: { status: 400 },
  // Dependencies
  database_unavailable: { status: 503 },
  temporal_unavailable: { status: 503 },
  not_ready: { status: 503 },
  // Anything unexpected: the API answers it with a generic message and logs the error.
  internal_error: { status: 500 },
} as const satisfies Record<string, { status: number; retryable?: boolean }>;

/** Every error code of the service, derived from the catalogue. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The codes as a list, for a schema that enumerates them (the API's error body). */
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as [ErrorCode, ...ErrorCode[]];

/** Whether the same request may succeed later: outages yes, bad input and missing rows no. */
export function retryableCode(code: ErrorCode): boolean {
  const entry: { status: number; retryable?: boolean } = ERROR_CATALOGUE[code];
  return entry.retryable ?? entry.status >= 500;
}
