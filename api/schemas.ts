import { z, type ZodType } from 'zod';
import type { ZodOpenApiResponsesObject } from 'zod-openapi';
import { PURCHASE_RECORD_STATUSES } from '../domain/purchase-records';

/**
 * The schemas of the HTTP API: the handlers validate with them and the OpenAPI document is
 * generated from them, so the description cannot drift from the code. Request bodies are strict:
 * an unknown field is an error, not silently dropped.
 */

export const accountId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'letters, digits, _ . : - (at most 128)')
  .meta({ description: "The client's own account ID.", example: 'acct_42' });

// A purchase is identified by its checkout session or, for a subscription period, its invoice.
const purchaseId = z
  .string()
  .regex(/^(cs|in)_\w{1,200}$/, 'a checkout session ID (cs_…) or an invoice ID (in_…)')
  .meta({ example: 'cs_test_a1b2c3' });

const positiveCount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const idempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, '1 to 255 visible ASCII characters')
  .meta({
    description: 'Chosen by the client; the same key replays the same result.',
    example: 'order-7731',
  });

/**
 * Text a person wrote (a reason, a note): it is stored and read back, so it must survive
 * PostgreSQL as sent. NUL and other control characters are refused (PostgreSQL text refuses
 * NUL), and so are lone surrogates (the driver would store them as U+FFFD, and a faithful
 * replay would no longer match).
 */
const humanText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    // Cc: C0, DEL and C1 (U+0085 is a line break, U+009B a terminal escape introducer).
    .refine((text) => !/\p{Cc}/u.test(text), 'no control characters')
    .refine((text) => !/\p{Cs}/u.test(text), 'well-formed Unicode (no lone surrogates)');

// --- requests -----------------------------------------------------------------------------

export const accountParams = z.object({ id: accountId });

export const createAccountBody = z
  .strictObject({ id: accountId, email: z.email().max(254).meta({ example: 'billing@customer.example' }) })
  .meta({ id: 'CreateAccount' });

/** `limit` and `cursor` of a listing paged by an opaque cursor (api/cursors.ts). */
export function pageQueryFields(items: string) {
  return {
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(100)
      .default(25)
      .meta({ description: `${items} per page (1–100).` }),
    cursor: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'a cursor returned by a previous page')
      .optional()
      .meta({ description: 'The `nextCursor` of the previous page.' }),
  };
}

export const ledgerQuery = z.strictObject(pageQueryFields('Entries'));

export const createDebitBody = z
  .strictObject({
    amount: positiveCount.meta({ description: 'Credits to spend.', example: 5 }),
    idempotencyKey,
    reason: humanText(500).meta({ example: 'image generation' }),
  })
  .meta({ id: 'CreateDebit' });

const grantId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const grantParams = z.object({ id: accountId, grantId });

export const createGrantBody = z
  .strictObject({
    amount: positiveCount.meta({ description: 'Credits to grant.', example: 500 }),
    category: z
      .enum(['paid', 'promotional'])
      .default('promotional')
      .meta({ description: 'Promotional credits are reported apart and, by default, spent first.' }),
    priority: z.number().int().min(0).max(1000).optional().meta({
      description: 'Lower is spent first. Defaults: promotional 10, paid 100.',
    }),
    expiresAt: z.iso.datetime({ offset: true }).optional().meta({
      description: 'When the unused rest expires; none means never.',
      example: '2027-01-31T00:00:00Z',
    }),
    reason: humanText(500).meta({ example: 'launch promotion' }),
    idempotencyKey,
  })
  .meta({ id: 'CreateGrant' });

export const voidGrantBody = z
  .strictObject({ reason: humanText(500).meta({ example: 'granted by mistake' }) })
  .meta({ id: 'VoidGrant' });

const reservationId = z.string().regex(/^rsv_[0-9a-f]{32}$/, 'a reservation ID (rsv_…)');

export const reservationParams = z.object({ id: accountId, reservationId });

export const createReservationBody = z
  .strictObject({
    amount: positiveCount.meta({ description: 'Credits to hold.', example: 50 }),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .meta({ description: 'Released by itself after this long unless captured.', example: 600 }),
    idempotencyKey,
  })
  .meta({ id: 'CreateReservation' });

export const captureReservationBody = z
  .strictObject({
    amount: positiveCount
      .optional()
      .meta({ description: 'Credits to spend (at most the hold); all by default.' }),
    reason: humanText(500).meta({ example: 'video render' }),
  })
  .meta({ id: 'CaptureReservation' });

export const createCheckoutBody = z
  .strictObject({
    accountId,
    packId: z
      .string()
      .regex(/^[\x21-\x7e]{1,64}$/, '1 to 64 visible ASCII characters')
      .optional()
      .meta({ description: 'A pack from GET /v1/packs.', example: 'starter' }),
    credits: positiveCount.optional().meta({ description: 'A custom number of credits, instead of a pack.' }),
    successUrl: z.url({ protocol: /^https?$/ }).meta({ example: 'https://app.example.com/billing/success' }),
    cancelUrl: z.url({ protocol: /^https?$/ }).meta({ example: 'https://app.example.com/billing' }),
    savePaymentMethod: z.boolean().optional().meta({
      description: 'Save the card for automatic top-ups (a Stripe customer is created once per account).',
    }),
  })
  .refine((body) => (body.packId === undefined) !== (body.credits === undefined), {
    message: 'give exactly one of packId and credits',
    path: ['packId'],
  })
  .meta({ id: 'CreateCheckoutSession' });

export const checkoutHeaders = z.object({ 'idempotency-key': idempotencyKey.optional() });

export const purchaseParams = z.object({ checkoutSessionId: purchaseId });

// --- responses ----------------------------------------------------------------------------

export const accountResponse = z
  .object({
    id: accountId,
    email: z.string(),
    balance: z.number().int().meta({ description: 'Σ ledger: what grants hold, less any debt.' }),
    available: z.number().int().meta({ description: 'What a debit or a hold may take now.' }),
    held: z.number().int().meta({ description: 'Credits held by open reservations.' }),
    debt: z
      .number()
      .int()
      .meta({ description: 'Spent credits a refund or dispute took back, not repaid yet.' }),
    credits: z
      .object({ paid: z.number().int(), promotional: z.number().int() })
      .meta({ description: 'What open grants hold, by category.' }),
  })
  .meta({ id: 'Account' });

export const grantResponse = z
  .object({
    id: z.number().int(),
    source: z.enum(['purchase', 'subscription', 'promotional', 'manual', 'migration']),
    category: z.enum(['paid', 'promotional']),
    priority: z.number().int(),
    amount: z.number().int(),
    remaining: z.number().int(),
    status: z.enum(['live', 'expired', 'voided']).meta({
      description: '`live` until it expires or is voided (a live grant past `expiresAt` is no longer spent).',
    }),
    effectiveAt: z.iso.datetime(),
    expiresAt: z.iso.datetime().nullable(),
    reference: z
      .string()
      .meta({ description: 'The business key that created it (session, invoice, request).' }),
    reason: z.string().nullable(),
    createdBy: z.string().nullable(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Grant' });

export const reservationResponse = z
  .object({
    id: z.string(),
    amount: z.number().int(),
    status: z.enum(['held', 'captured', 'released', 'expired']),
    captured: z.number().int().nullable(),
    expiresAt: z.iso.datetime(),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Reservation' });

export const packResponse = z
  .object({
    id: z.string(),
    name: z.string(),
    credits: z.number().int(),
    amountCents: z.number().int(),
    currency: z.string(),
  })
  .meta({ id: 'Pack' });

export const packListResponse = z.object({ packs: z.array(packResponse) }).meta({ id: 'PackList' });

export const ledgerEntryResponse = z
  .object({
    id: z.number().int(),
    delta: z
      .number()
      .int()
      .meta({ description: 'Positive for grants, negative for debits and revocations.' }),
    kind: z.string().meta({ example: 'purchase' }),
    reference: z.string().meta({ description: 'The business key that makes this movement happen once.' }),
    reason: z.string().nullable(),
    balanceAfter: z.number().int(),
    allocations: z
      .array(z.object({ grantId: z.number().int(), amount: z.number().int() }))
      .meta({ description: 'Which grants the movement took from (negative: gave back to).' }),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'LedgerEntry' });

export const ledgerPageResponse = z
  .object({ entries: z.array(ledgerEntryResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'LedgerPage' });

export const debitResponse = z
  .object({
    entryId: z.number().int(),
    balance: z.number().int().meta({ description: 'The balance this debit left.' }),
  })
  .meta({ id: 'Debit' });

export const checkoutResponse = z
  .object({
    id: z.string(),
    url: z.string().nullable(),
    credits: z.number().int(),
    amountCents: z.number().int(),
    currency: z.string(),
  })
  .meta({ id: 'CheckoutSession' });

export const purchaseResponse = z
  .object({
    id: z.string(),
    status: z.enum(PURCHASE_RECORD_STATUSES),
    credits: z.number().int().nullable(),
    accountId: z.string().nullable(),
    packId: z.string().nullable(),
    reasonCode: z.string().nullable(),
    reason: z.string().nullable(),
    workflowId: z.string(),
    ledgerEntryId: z.number().int().nullable(),
    updatedAt: z.iso.datetime(),
    workflow: z.record(z.string(), z.unknown()).nullable().meta({
      description: 'While the workflow runs: what its `status` query says (stage, reason, receipt).',
    }),
  })
  .meta({ id: 'Purchase' });

export const errorResponse = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable, snake_case.', example: 'invalid_request' }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error' });

export const webhookResponse = z
  .object({
    received: z.literal(true),
    workflowId: z.string().nullable(),
    status: z.enum(['started', 'duplicate', 'ignored', 'rejected']).meta({
      description: '`rejected`: a signed event that can never be processed, kept at GET /v1/rejected-events.',
    }),
  })
  .meta({ id: 'WebhookAck' });

export const rejectedEventListResponse = z
  .object({
    events: z.array(
      z.object({
        id: z.number().int(),
        eventId: z.string(),
        eventType: z.string().nullable(),
        reasonCode: z.enum(['invalid_event', 'invalid_object', 'refused_by_temporal']),
        reason: z.string(),
        payloadExcerpt: z
          .string()
          .meta({ description: 'The first 4 KB of the body, control characters replaced.' }),
        deliveries: z.number().int(),
        firstReceivedAt: z.iso.datetime(),
        lastReceivedAt: z.iso.datetime(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: 'RejectedEventList' });

export const reservationCaptureResponse = reservationResponse
  .extend({ entryId: z.number().int(), balance: z.number().int() })
  .meta({ id: 'ReservationCapture' });

export const grantPageResponse = z
  .object({ grants: z.array(grantResponse), nextCursor: z.string().nullable() })
  .meta({ id: 'GrantPage' });

// --- the review desk and the audit log (admin keys) -----------------------------------------

// Purchases and invoices run as workflows whose ID is the Stripe event's.
const reviewWorkflowId = z
  .string()
  .regex(/^evt_[A-Za-z0-9_]{1,251}$/, 'a workflow ID (the Stripe event ID, evt_…)')
  .meta({ example: 'evt_1QxAbC2eZvKYlo2C' });

export const reviewParams = z.object({ workflowId: reviewWorkflowId });

export const reviewListQuery = z.strictObject({
  limit: ledgerQuery.shape.limit,
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,4096}$/, 'a cursor returned by a previous page')
    .optional()
    .meta({ description: 'The `nextCursor` of the previous page.' }),
  accountId: accountId.optional().meta({ description: 'Only what is held for this account.' }),
});

export const reviewDecisionBody = z
  .strictObject({
    decision: z.enum(['approve', 'reject']),
    credits: positiveCount.optional().meta({
      description:
        'Approve only: the credits to grant instead of what the catalog or plan says (needed when it knows none).',
      example: 100,
    }),
    note: humanText(500).meta({
      description: 'Why: kept in the audit log and, for a rejection, as the reason.',
      example: 'coupon',
    }),
  })
  .refine((body) => body.decision === 'approve' || body.credits === undefined, {
    message: 'credits are given only with an approval',
    path: ['credits'],
  })
  .meta({ id: 'ReviewDecision' });

export const auditQuery = z.strictObject({
  limit: ledgerQuery.shape.limit,
  cursor: ledgerQuery.shape.cursor,
  subject: z
    .string()
    .regex(/^[a-z]+:[\x21-\x7e]{1,290}$/, 'a subject such as grant:17 or workflow:evt_…')
    .optional()
    .meta({ description: 'Only the entries about this subject.', example: 'grant:17' }),
});

const rejectedEvent = rejectedEventListResponse.shape.events.element;

export const heldForReviewResponse = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    kind: z.enum(['purchase', 'invoice']),
    eventType: z.string().nullable(),
    purchaseId: z
      .string()
      .nullable()
      .meta({ description: 'The checkout session (cs_…) or invoice (in_…), as at GET /v1/purchases.' }),
    purchaseStatus: z.enum(PURCHASE_RECORD_STATUSES).nullable().meta({
      description: 'Usually held_for_review; completed when another event for it was granted meanwhile.',
    }),
    accountId: z.string().nullable(),
    reasonCode: z.string().nullable(),
    reason: z.string().nullable(),
    amountCents: z.number().int().nullable().meta({ description: 'What the customer paid.' }),
    currency: z.string().nullable(),
    credits: z
      .number()
      .int()
      .nullable()
      .meta({ description: 'What approving grants by default; null: the reviewer says.' }),
    heldSince: z.iso.datetime().nullable(),
    startedAt: z.iso.datetime(),
  })
  .meta({ id: 'HeldForReview' });

export const reviewListResponse = z
  .object({
    reviews: z.array(heldForReviewResponse),
    nextCursor: z.string().nullable().meta({
      description: "Temporal's page token; a page may be short (or, at the very end, empty).",
    }),
    rejectedEvents: z
      .object({
        total: z.number().int(),
        newest: z.array(rejectedEvent).meta({ description: 'Up to 5; the rest at GET /v1/rejected-events.' }),
      })
      .meta({ description: 'Signed Stripe events rejected for good, which an operator may replay by hand.' }),
  })
  .meta({ id: 'ReviewList' });

export const reviewDecisionResponse = z
  .object({
    workflowId: z.string(),
    decision: z.enum(['approve', 'reject']),
    reviewer: z.string().meta({ description: 'The name of the API key that decided.' }),
    applied: z.boolean().meta({
      description: 'Whether the workflow has taken the decision in yet (200) or has it waiting (202).',
    }),
    stage: z.string().nullable().meta({
      description:
        'Its stage now, as `PurchaseStatus` / `BillingStatus` say (e.g. granting, completed, rejected).',
    }),
    auditId: z.number().int(),
  })
  .meta({ id: 'ReviewOutcome' });

export const auditPageResponse = z
  .object({
    entries: z.array(
      z.object({
        id: z.number().int(),
        at: z.iso.datetime(),
        actor: z.string().meta({ description: 'The name of the API key that acted.' }),
        action: z.enum(['grant.created', 'grant.voided', 'review.approved', 'review.rejected']),
        subject: z.string().meta({ example: 'grant:17' }),
        before: z.unknown().meta({ description: 'What the subject was before (null for a creation).' }),
        after: z.unknown(),
        reason: z.string().nullable(),
      }),
    ),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: 'AuditPage' });

/** What api/openapi.ts hands to the modules that describe their own routes' operations. */
export type OpenApiBuilders = {
  json: (schema: ZodType) => { content: { 'application/json': { schema: ZodType } } };
  responses: (
    success: Record<string, [string, ZodType]>,
    failures: Record<string, string>,
  ) => ZodOpenApiResponsesObject;
  authFailures: Record<string, string>;
};
