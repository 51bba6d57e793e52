import { z } from 'zod';
import { PURCHASE_RECORD_STATUSES } from '../../domain/purchase-records';
import { accountId, humanText, pageQueryFields, positiveCount } from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { rejectedEventResponse } from './rejected-events';
import { reviewDesk } from './review-desk';

/**
 * The review desk (admin keys): what waits for a reviewer, and the decision on it. What the
 * desk does is api/routes/review-desk.ts.
 */

// --- schemas ------------------------------------------------------------------------------

// Purchases and invoices run as workflows whose ID is the Stripe event's.
const reviewParams = z.object({
  workflowId: z
    .string()
    .regex(/^evt_[A-Za-z0-9_]{1,251}$/, 'a workflow ID (the Stripe event ID, evt_…)')
    .meta({ example: 'evt_1QxAbC2eZvKYlo2C' }),
});

const reviewListQuery = z.strictObject({
  limit: pageQueryFields('Entries').limit,
  // Temporal's page token behind a check: longer than the cursors of this API's own pages.
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,4096}$/, 'a cursor returned by a previous page')
    .optional()
    .meta({ description: 'The `nextCursor` of the previous page.' }),
  accountId: accountId.optional().meta({ description: 'Only what is held for this account.' }),
});

const reviewDecisionBody = z
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

const heldForReviewResponse = z
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

const reviewListResponse = z
  .object({
    reviews: z.array(heldForReviewResponse),
    nextCursor: z.string().nullable().meta({
      description: "Temporal's page token; a page may be short (or, at the very end, empty).",
    }),
    rejectedEvents: z
      .object({
        total: z.number().int(),
        newest: z
          .array(rejectedEventResponse)
          .meta({ description: 'Up to 5; the rest at GET /v1/rejected-events.' }),
      })
      .meta({ description: 'Signed Stripe events rejected for good, which an operator may replay by hand.' }),
  })
  .meta({ id: 'ReviewList' });

const reviewDecisionResponse = z
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

// --- routes -------------------------------------------------------------------------------

const temporalUnavailable = { 503: 'Temporal unavailable (`temporal_unavailable`).' };

export const reviewRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/reviews',
    role: 'admin',
    summary: 'What waits for a reviewer: purchases and invoices held for review, and rejected events',
    description:
      "Held runs come from a Temporal visibility query (`PurchaseStatus` or `BillingStatus` = 'held_for_review'), " +
      'newest first; reason and amount from the purchase each recorded. Visibility lags a second or so.',
    query: reviewListQuery,
    responses: { 200: ['One page.', reviewListResponse] },
    errors: { 400: 'Bad limit, cursor or account.', ...temporalUnavailable },
    handler: async ({ query, deps }) => ({ status: 200, body: await reviewDesk(deps).list(query) }),
  }),

  defineRoute({
    method: 'post',
    path: '/v1/reviews/:workflowId',
    role: 'admin',
    summary: 'Approve (optionally with credits) or reject a held purchase or invoice',
    description:
      "Sends the workflow's `review` signal with the key's name as reviewer, then records the decision in the " +
      'audit log. One decision at a time per workflow: a second one finds the first applied (409).',
    params: reviewParams,
    body: reviewDecisionBody,
    responses: {
      200: ['Sent and taken in by the workflow: `stage` is where it went.', reviewDecisionResponse],
      202: ['Sent; the workflow takes it in when its worker runs.', reviewDecisionResponse],
    },
    errors: {
      400: '`invalid_request` (credits with a rejection, no note).',
      404: 'No purchase or invoice workflow has this ID (`review_not_found`).',
      409: 'Not held for review (`not_held_for_review`, with its stage), or an earlier decision is not applied yet (`review_in_progress`).',
      ...temporalUnavailable,
    },
    handler: async ({ params, body, caller, deps }) => {
      const { workflowId } = params;
      const outcome = await reviewDesk(deps).decide(workflowId, body, caller.name);
      return {
        status: outcome.applied ? 200 : 202,
        body: {
          workflowId,
          decision: body.decision,
          reviewer: caller.name,
          applied: outcome.applied,
          stage: outcome.stage,
          auditId: outcome.auditId,
        },
      };
    },
  }),
];
