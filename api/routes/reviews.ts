import { z } from 'zod';
import { errors } from '../../domain/errors';
import { PURCHASE_RECORD_STATUSES } from '../../domain/purchase-records';
import { reviewDesk } from '../../temporal/reviews';
import type { ReviewAnswer } from '../../workflows/reviews/contract';
import { accountId, humanText, pageQueryFields, positiveCount } from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { presentRejectedEvent, rejectedEventResponse } from './rejected-events';

/**
 * The review desk (admin keys): what waits for a reviewer, and the decision on it. What the
 * desk does is temporal/reviews.ts.
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

const reviewOutcomeFields = {
  workflowId: z.string(),
  decision: z.enum(['approve', 'reject']),
  reviewer: z.string().meta({ description: 'The name of the API key that decided.' }),
  applied: z.boolean().meta({
    description: 'Whether the decision did what it says: credits granted, or the payment closed.',
  }),
  stage: z.string().meta({
    description:
      'Where the run went, as `PurchaseStatus` / `BillingStatus` say (e.g. sending_receipt, rejected); held_for_review when not applied.',
  }),
  credits: z.number().int().nullable().meta({ description: 'The credits granted (an approval).' }),
  ledgerEntryId: z.number().int().nullable(),
  auditId: z
    .number()
    .int()
    .nullable()
    .meta({ description: 'The audit log entry, written in the same transaction as the decision.' }),
  reasonCode: z
    .string()
    .nullable()
    .meta({ description: 'Why it was not applied (`balance_out_of_range`…).' }),
  reason: z
    .string()
    .nullable()
    .meta({ description: 'Why not applied, or the reason a rejection closed it with.' }),
};

const reviewDecisionResponse = z.object(reviewOutcomeFields).meta({ id: 'ReviewOutcome' });

/** What the run answered, as the API presents it (200, or the details of 422 `review_not_applied`). */
const presentOutcome = (workflowId: string, reviewer: string, answer: ReviewAnswer) => ({
  workflowId,
  decision: answer.decision,
  reviewer,
  applied: answer.applied,
  stage: answer.stage,
  credits: answer.credits,
  ledgerEntryId: answer.ledgerEntryId,
  auditId: answer.auditId,
  reasonCode: answer.reasonCode,
  reason: answer.reason,
});

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
    errors: {
      400: 'Bad limit or account; a cursor this API did not return for these filters, or that Temporal no longer reads.',
      ...temporalUnavailable,
    },
    handler: async ({ query, deps }) => {
      const page = await reviewDesk(deps).list(query);
      const newest = page.rejectedEvents.newest.map(presentRejectedEvent);
      return { status: 200, body: { ...page, rejectedEvents: { ...page.rejectedEvents, newest } } };
    },
  }),

  defineRoute({
    method: 'post',
    path: '/v1/reviews/:workflowId',
    role: 'admin',
    summary: 'Approve (optionally with credits) or reject a held purchase or invoice',
    description:
      "Sends the run its `decide` update with the key's name as reviewer. The run checks it (held, one decision at " +
      'a time, an approval that can grant), applies it (the grant or the closing, and the audit row, in one ' +
      'transaction) and answers what it did. An approval the ledger refuses (the balance would pass 2^53 − 1) is ' +
      'answered 422 `review_not_applied` with the outcome in `details`: audited, and still held.',
    params: reviewParams,
    body: reviewDecisionBody,
    responses: {
      200: [
        'Applied: credits granted, or the payment closed; `stage` is where the run went.',
        reviewDecisionResponse,
      ],
    },
    errors: {
      400: '`invalid_request` (credits with a rejection, no note).',
      404: 'No purchase or invoice workflow has this ID (`review_not_found`).',
      409: 'Not held for review (`not_held_for_review`, with its stage), another decision is being applied (`review_in_progress`), or nobody is known to have paid, so only a rejection closes it (`review_buyer_unknown`).',
      422: 'An approval without `credits` where the catalog knows no pack or plan (`review_credits_required`); or taken but not applied, the payment still held (`review_not_applied`, `details` as the 200 body, with `reasonCode`).',
      503: 'The run did not answer within `REVIEW_APPLY_WAIT_MS` (`review_not_delivered`: no worker took it in yet, or it is still being applied; Temporal keeps it, and the run applies or refuses it when its worker is back), or Temporal unavailable (`temporal_unavailable`).',
    },
    handler: async ({ params, body, caller, deps }) => {
      const { workflowId } = params;
      const answer = await reviewDesk(deps).decide(workflowId, body, caller.name);
      const outcome = presentOutcome(workflowId, caller.name, answer);
      if (!answer.applied) throw errors.reviewNotApplied(workflowId, answer.reason ?? 'not applied', outcome);
      return { status: 200, body: outcome };
    },
  }),
];
