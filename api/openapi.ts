import { z, type ZodType } from 'zod';
import type { ApiRole } from '../config/env';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import {
  accountParams,
  accountResponse,
  auditPageResponse,
  auditQuery,
  captureReservationBody,
  createGrantBody,
  createReservationBody,
  grantPageResponse,
  grantParams,
  grantResponse,
  rejectedEventListResponse,
  reviewDecisionBody,
  reviewDecisionResponse,
  reviewListQuery,
  reviewListResponse,
  reviewParams,
  reservationCaptureResponse,
  reservationParams,
  reservationResponse,
  voidGrantBody,
  checkoutHeaders,
  checkoutResponse,
  createAccountBody,
  createCheckoutBody,
  createDebitBody,
  debitResponse,
  errorResponse,
  ledgerPageResponse,
  ledgerQuery,
  packListResponse,
  purchaseParams,
  purchaseResponse,
  webhookResponse,
} from './schemas';
import { codecPayloads } from './codec-server';
import { TOPUP_ROLES, topupOperations } from './routes/topup-schemas';
import { WEBHOOK_ENDPOINT_ROLES, webhookEndpointOperations } from './webhook-endpoint-schemas';

const json = (schema: ZodType) => ({ content: { 'application/json': { schema } } });

function responses(
  success: Record<string, [string, ZodType]>,
  failures: Record<string, string>,
): ZodOpenApiResponsesObject {
  return {
    ...Object.fromEntries(
      Object.entries(success).map(([status, [description, schema]]) => [
        status,
        { description, ...json(schema) },
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(failures).map(([status, description]) => [
        status,
        { description, ...json(errorResponse) },
      ]),
    ),
  };
}

const AUTH_FAILURES = { '401': 'Missing or invalid API key (`unauthorized`).' };

const operations: Record<string, Record<string, ZodOpenApiOperationObject>> = {
  '/webhooks/stripe': {
    post: {
      summary: 'Receive a Stripe event',
      description:
        'Verifies `Stripe-Signature` over the raw body with every configured secret, then hands the event to ' +
        'Temporal (workflow ID = event ID). Answers 2xx only once the work is durable.',
      security: [],
      requestBody: {
        content: { 'application/json': { schema: { type: 'object', description: 'A Stripe Event.' } } },
      },
      responses: responses(
        {
          '200': [
            'Accepted, a duplicate, ignored, or rejected for good (a signed event that can never be processed).',
            webhookResponse,
          ],
        },
        {
          '400':
            '`missing_signature`, `invalid_signature`, `signature_expired`, `malformed_json` or `invalid_event`.',
          '413': 'Body over the limit (`payload_too_large`).',
          '503':
            'Temporal or the database unavailable (`temporal_unavailable`, `database_unavailable`): Stripe retries.',
        },
      ),
    },
  },
  '/v1/packs': {
    get: {
      summary: 'List the credit packs for sale',
      responses: responses({ '200': ['The active catalog.', packListResponse] }, AUTH_FAILURES),
    },
  },
  '/v1/accounts': {
    post: {
      summary: 'Create an account',
      requestBody: json(createAccountBody),
      responses: responses(
        {
          '201': ['Created with a zero balance.', accountResponse],
          '200': ['It already existed; unchanged.', accountResponse],
        },
        { '400': 'Invalid body (`invalid_request`, `malformed_json`).', ...AUTH_FAILURES },
      ),
    },
  },
  '/v1/accounts/{id}': {
    get: {
      summary: 'Read an account and its balance',
      requestParams: { path: accountParams },
      responses: responses(
        { '200': ['The account.', accountResponse] },
        { ...AUTH_FAILURES, '404': '`account_not_found`.' },
      ),
    },
  },
  '/v1/accounts/{id}/ledger': {
    get: {
      summary: "Page through an account's ledger, newest first",
      requestParams: { path: accountParams, query: ledgerQuery },
      responses: responses(
        { '200': ['One page; `nextCursor` is null on the last.', ledgerPageResponse] },
        { '400': 'Bad limit or cursor.', ...AUTH_FAILURES, '404': '`account_not_found`.' },
      ),
    },
  },
  '/v1/accounts/{id}/debits': {
    post: {
      summary: 'Spend credits, once per idempotency key',
      requestParams: { path: accountParams },
      requestBody: json(createDebitBody),
      responses: responses(
        { '201': ['Debited (or the same key replayed: the original result).', debitResponse] },
        {
          '400': '`invalid_request`.',
          ...AUTH_FAILURES,
          '402': 'The balance would go below zero (`insufficient_credits`).',
          '404': '`account_not_found`.',
          '409': 'The key was used with another amount or reason (`idempotency_key_reused`).',
        },
      ),
    },
  },
  '/v1/accounts/{id}/grants': {
    get: {
      summary: "Page through an account's credit grants, newest first",
      requestParams: { path: accountParams, query: ledgerQuery },
      responses: responses(
        { '200': ['One page of grants with what remains of each.', grantPageResponse] },
        { '400': 'Bad limit or cursor.', ...AUTH_FAILURES, '404': '`account_not_found`.' },
      ),
    },
    post: {
      summary: 'Grant promotional or manual credits, once per idempotency key',
      requestParams: { path: accountParams },
      requestBody: json(createGrantBody),
      responses: responses(
        {
          '201': ['Granted; `createdBy` names the API key.', grantResponse],
          '200': ['The same key replayed: the grant it made.', grantResponse],
        },
        {
          '400': '`invalid_request` (including an expiry in the past).',
          ...AUTH_FAILURES,
          '404': '`account_not_found`.',
          '409': 'The key was used with other parameters (`idempotency_key_reused`).',
        },
      ),
    },
  },
  '/v1/accounts/{id}/grants/{grantId}/void': {
    post: {
      summary: 'Void what remains of a grant (once; what was spent stays spent)',
      requestParams: { path: grantParams },
      requestBody: json(voidGrantBody),
      responses: responses(
        { '200': ['The grant, voided.', grantResponse] },
        { '400': '`invalid_request`.', ...AUTH_FAILURES, '404': '`grant_not_found`.' },
      ),
    },
  },
  '/v1/accounts/{id}/reservations': {
    post: {
      summary: 'Hold credits until captured, released, or the TTL passes',
      requestParams: { path: accountParams },
      requestBody: json(createReservationBody),
      responses: responses(
        {
          '201': ['Held.', reservationResponse],
          '200': ['The same key replayed: the reservation it made.', reservationResponse],
        },
        {
          '400': '`invalid_request`.',
          ...AUTH_FAILURES,
          '402': 'Not enough available credits (`insufficient_credits`).',
          '404': '`account_not_found`.',
          '409': '`idempotency_key_reused`.',
        },
      ),
    },
  },
  '/v1/accounts/{id}/reservations/{reservationId}': {
    get: {
      summary: 'Read a reservation',
      requestParams: { path: reservationParams },
      responses: responses(
        { '200': ['The reservation.', reservationResponse] },
        { ...AUTH_FAILURES, '404': '`reservation_not_found`.' },
      ),
    },
  },
  '/v1/accounts/{id}/reservations/{reservationId}/capture': {
    post: {
      summary: 'Capture a hold, all or part, as a debit drawn from grants',
      requestParams: { path: reservationParams },
      requestBody: json(captureReservationBody),
      responses: responses(
        {
          '201': [
            'Captured (a replay with the same amount answers the same debit).',
            reservationCaptureResponse,
          ],
        },
        {
          '400': '`invalid_request`.',
          ...AUTH_FAILURES,
          '404': '`reservation_not_found`.',
          '409': 'Released, expired or captured otherwise (`reservation_settled`).',
          '422': 'More than the hold (`capture_exceeds_hold`).',
        },
      ),
    },
  },
  '/v1/accounts/{id}/reservations/{reservationId}/release': {
    post: {
      summary: 'Release a hold (a settled one is answered as it is)',
      requestParams: { path: reservationParams },
      responses: responses(
        { '200': ['The reservation.', reservationResponse] },
        { ...AUTH_FAILURES, '404': '`reservation_not_found`.' },
      ),
    },
  },
  '/v1/rejected-events': {
    get: {
      summary: 'Signed Stripe events rejected for good, newest first',
      requestParams: { query: ledgerQuery },
      responses: responses(
        { '200': ['One page.', rejectedEventListResponse] },
        { '400': 'Bad limit or cursor.', ...AUTH_FAILURES },
      ),
    },
  },
  '/v1/reviews': {
    get: {
      summary: 'What waits for a reviewer: purchases and invoices held for review, and rejected events',
      description:
        "Held runs come from a Temporal visibility query (`PurchaseStatus` or `BillingStatus` = 'held_for_review'), " +
        'newest first; reason and amount from the purchase each recorded. Visibility lags a second or so.',
      requestParams: { query: reviewListQuery },
      responses: responses(
        { '200': ['One page.', reviewListResponse] },
        {
          '400': 'Bad limit, cursor or account.',
          ...AUTH_FAILURES,
          '503': 'Temporal unavailable (`temporal_unavailable`).',
        },
      ),
    },
  },
  '/v1/reviews/{workflowId}': {
    post: {
      summary: 'Approve (optionally with credits) or reject a held purchase or invoice',
      description:
        "Sends the workflow's `review` signal with the key's name as reviewer, then records the decision in the " +
        'audit log. One decision at a time per workflow: a second one finds the first applied (409).',
      requestParams: { path: reviewParams },
      requestBody: json(reviewDecisionBody),
      responses: responses(
        {
          '200': ['Sent and taken in by the workflow: `stage` is where it went.', reviewDecisionResponse],
          '202': ['Sent; the workflow takes it in when its worker runs.', reviewDecisionResponse],
        },
        {
          '400': '`invalid_request` (credits with a rejection, no note).',
          ...AUTH_FAILURES,
          '404': 'No purchase or invoice workflow has this ID (`review_not_found`).',
          '409':
            'Not held for review (`not_held_for_review`, with its stage), or an earlier decision is not applied yet (`review_in_progress`).',
          '503': 'Temporal unavailable (`temporal_unavailable`).',
        },
      ),
    },
  },
  '/v1/audit': {
    get: {
      summary: 'The audit log of operator actions, newest first',
      description:
        'Review decisions, manual and promotional grants, voids: who (the API key name), what, when, before, after, why. ' +
        'Append-only: the database refuses to change or delete an entry.',
      requestParams: { query: auditQuery },
      responses: responses(
        { '200': ['One page; `nextCursor` is null on the last.', auditPageResponse] },
        { '400': 'Bad limit, cursor or subject.', ...AUTH_FAILURES },
      ),
    },
  },
  '/v1/checkout/sessions': {
    post: {
      summary: 'Create a Stripe Checkout Session for a pack or a custom number of credits',
      requestParams: { header: checkoutHeaders },
      requestBody: json(createCheckoutBody),
      responses: responses(
        {
          '201': [
            'The session to redirect the customer to; its price is the server\u2019s.',
            checkoutResponse,
          ],
        },
        {
          '400': '`invalid_request` (including credits outside the configured range).',
          ...AUTH_FAILURES,
          '404': '`account_not_found` or `pack_not_found`.',
          '409': 'The Idempotency-Key was used with other parameters (`idempotency_key_reused`).',
          '422': 'A redirect URL is not on an allowed host (`redirect_url_not_allowed`).',
          '502': 'Stripe refused the request (`stripe_error`, with `details.stripeCode`).',
          '503': 'No Stripe key configured (`stripe_not_configured`).',
        },
      ),
    },
  },
  '/v1/purchases/{checkoutSessionId}': {
    get: {
      summary: 'Where a purchase is',
      requestParams: { path: purchaseParams },
      responses: responses(
        { '200': ['The purchase.', purchaseResponse] },
        { ...AUTH_FAILURES, '404': '`purchase_not_found`.' },
      ),
    },
  },
  '/healthz': {
    get: { summary: 'Liveness', security: [], responses: { '200': { description: 'The process is up.' } } },
  },
  '/readyz': {
    get: {
      summary: 'Readiness: PostgreSQL and Temporal answer',
      security: [],
      responses: {
        '200': { description: 'Ready.' },
        '503': { description: '`not_ready`, with each check.', ...json(errorResponse) },
      },
    },
  },
  '/metrics': {
    get: {
      summary: 'Prometheus metrics',
      security: [],
      responses: { '200': { description: 'Text format.' } },
    },
  },
  '/codec/decode': { post: codecOperation('decode') },
  '/codec/encode': { post: codecOperation('encode') },
  ...topupOperations({ json, responses, authFailures: AUTH_FAILURES }),
  ...webhookEndpointOperations({ json, responses, authFailures: AUTH_FAILURES }),
};

/** Temporal's remote codec protocol (api/codec-server.ts), for the Temporal UI and CLI. */
function codecOperation(operation: 'encode' | 'decode'): ZodOpenApiOperationObject {
  return {
    summary:
      operation === 'decode'
        ? "Decrypt payloads from Temporal's history (Temporal's remote codec protocol)"
        : 'Encrypt payloads as the service does (Temporal remote codec protocol)',
    description:
      'For the Temporal UI and CLI, with the key ring of the clients and workers. Also served as ' +
      `\`/codec/{token}/${operation}\`, the token in the path, for the Temporal UI, which sends no header of ` +
      'its own. `X-Namespace`, when sent, must be the namespace the service uses. From a browser, only ' +
      'from a `TEMPORAL_UI_ORIGIN` origin (CORS preflight answered for those origins only).',
    security: [{ codecToken: [] }, { apiKey: [] }],
    requestParams: {
      header: z.object({
        'x-namespace': z
          .string()
          .optional()
          .meta({ description: 'The Temporal namespace.', example: 'default' }),
      }),
    },
    requestBody: json(codecPayloads),
    responses: responses(
      { '200': [`The payloads, ${operation}d, in the same order.`, codecPayloads] },
      {
        '400': `A payload that cannot be ${operation}d (\`invalid_payload\`), or a malformed body.`,
        '401': 'Missing or invalid codec token or admin API key (`unauthorized`).',
        '403':
          'A browser origin other than TEMPORAL_UI_ORIGIN (`origin_not_allowed`), or another namespace (`namespace_not_served`).',
        '404': 'No codec token and no admin API key is configured (`codec_not_configured`).',
        '413': 'Body over 8 MB (`payload_too_large`).',
      },
    ),
  };
}

/**
 * The role each /v1 operation needs (read < write < admin). The routes mount the same with
 * `requireRole`; test/api/roles.test.ts calls every operation listed here to check they agree.
 */
const ROLES: Record<string, Record<string, ApiRole>> = {
  '/v1/packs': { get: 'read' },
  '/v1/accounts': { post: 'write' },
  '/v1/accounts/{id}': { get: 'read' },
  '/v1/accounts/{id}/ledger': { get: 'read' },
  '/v1/accounts/{id}/debits': { post: 'write' },
  '/v1/accounts/{id}/grants': { get: 'read', post: 'admin' },
  '/v1/accounts/{id}/grants/{grantId}/void': { post: 'admin' },
  '/v1/accounts/{id}/reservations': { post: 'write' },
  '/v1/accounts/{id}/reservations/{reservationId}': { get: 'read' },
  '/v1/accounts/{id}/reservations/{reservationId}/capture': { post: 'write' },
  '/v1/accounts/{id}/reservations/{reservationId}/release': { post: 'write' },
  '/v1/rejected-events': { get: 'admin' },
  '/v1/reviews': { get: 'admin' },
  '/v1/reviews/{workflowId}': { post: 'admin' },
  '/v1/audit': { get: 'admin' },
  '/v1/checkout/sessions': { post: 'write' },
  '/v1/purchases/{checkoutSessionId}': { get: 'read' },
  ...TOPUP_ROLES,
  ...WEBHOOK_ENDPOINT_ROLES,
};

/** Each /v1 operation with its role (`x-required-role`, the description) and, above read, its 403. */
function withRoles(paths: typeof operations): typeof operations {
  return Object.fromEntries(
    Object.entries(paths).map(([path, methods]) => [
      path,
      Object.fromEntries(
        Object.entries(methods).map(([method, operation]) => {
          if (!path.startsWith('/v1/')) return [method, operation];
          const role = ROLES[path]?.[method];
          if (!role) throw new Error(`no role is set for ${method.toUpperCase()} ${path}`);
          const needs = `Needs an API key with the \`${role}\` role (or above).`;
          return [
            method,
            {
              ...operation,
              'x-required-role': role,
              description: operation.description ? `${operation.description}\n\n${needs}` : needs,
              responses:
                role === 'read'
                  ? operation.responses
                  : {
                      ...operation.responses,
                      '403': {
                        description: `The key's role is below \`${role}\` (\`insufficient_role\`).`,
                        ...json(errorResponse),
                      },
                    },
            },
          ];
        }),
      ),
    ]),
  );
}

/** The OpenAPI 3.1 description, generated from the schemas the handlers validate with. */
export function createOpenApiDocument(serverUrl: string) {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Credits billing API',
      version: '1.0.0',
      description:
        'Prepaid credits sold through Stripe, granted exactly once. Errors: `{"error": {"code", "message"}}`.',
    },
    servers: [{ url: serverUrl }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        codecToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A token from TEMPORAL_CODEC_TOKEN (the codec server only; an admin API key works too).',
        },
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A key from BILLING_API_KEYS; its role (read, write, admin) decides which routes it may call.',
        },
      },
    },
    paths: withRoles(operations),
  });
}
