import {
  isGrpcServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import type { PayloadKeyRing } from '../config/payload-codec';
import type { Logger } from '../config/logger';
import type { Queryable, Sql } from '../db/client';
import { findPurchasesFor, type Purchase } from '../db/purchases/purchases';
import { listRejectedEvents, type RejectedEvent } from '../db/stripe/rejected-events';
import { BillingError, errors } from '../domain/errors';
import { errorCodeOfFailureType } from '../domain/failure-types';
import { INVOICE_WORKFLOW_TYPE, invoiceStatusQuery } from '../workflows/subscriptions/contract';
import { PURCHASE_WORKFLOW_TYPE, statusQuery } from '../workflows/purchases/contract';
import { decideUpdate, type ReviewAnswer, type ReviewDecision } from '../workflows/reviews/contract';
import {
  AccountId,
  BillingStatus,
  PurchaseStatus,
  StripeEventType,
} from '../workflows/shared/search-attributes';
import { invalidCursor, REVIEW_CURSOR_KEY_PURPOSE, reviewCursors } from './review-cursors';

/**
 * The reviews room, as the API sees it: what waits for a reviewer (a Temporal visibility query
 * on the runs' stage attributes, described from the purchases they recorded) and the decision on
 * one (the run's `decide` update, whose answer is what the decision did). api/routes/reviews.ts
 * routes to it.
 */

const HELD = 'held_for_review';
const TEMPORAL_TIMEOUT_MS = 3000;
const REJECTED_EVENTS_SHOWN = 5;

/** The workflows that can hold a payment for a reviewer, and the attribute that shows their stage. */
const REVIEWABLE: Record<string, { kind: 'purchase' | 'invoice'; stage: typeof PurchaseStatus }> = {
  [PURCHASE_WORKFLOW_TYPE]: { kind: 'purchase', stage: PurchaseStatus },
  [INVOICE_WORKFLOW_TYPE]: { kind: 'invoice', stage: BillingStatus },
};

/** What waits for a reviewer: visibility says which runs, the purchases table says what they hold. */
export interface HeldItem {
  workflowId: string;
  runId: string;
  kind: 'purchase' | 'invoice';
  eventType: string | null;
  purchaseId: string | null;
  purchaseStatus: string | null;
  accountId: string | null;
  reasonCode: string | null;
  reason: string | null;
  amountCents: number | null;
  currency: string | null;
  credits: number | null;
  heldSince: string | null;
  startedAt: string;
}

interface HeldRun {
  workflowId: string;
  runId: string;
  type: string;
  eventType: string | null;
  accountId: string | null;
  startedAt: Date;
}

/** A page of the desk, as the API asks for it (api/routes/reviews.ts validates it). */
export interface DeskPage {
  limit: number;
  cursor?: string | undefined;
  accountId?: string | undefined;
}

/** A reviewer's decision as the API takes it (api/routes/reviews.ts validates it). */
export interface DecisionRequest {
  decision: 'approve' | 'reject';
  credits?: number | undefined;
  note: string;
}

export interface ReviewDependencies {
  sql: Sql;
  temporal: Client;
  logger: Logger;
  config: {
    /** How long a decision may take to be delivered and applied before the answer is 503. */
    reviewApplyWaitMs: number;
    /** The payload key ring, from which the cursors' MAC key is derived. */
    temporalPayloads: { keyRing: PayloadKeyRing };
  };
}

/** The review desk: one page of what is held, and the decision on one held run. */
export function reviewDesk({ sql, temporal, logger, config }: ReviewDependencies) {
  const namespace = temporal.options.namespace;
  const cursors = reviewCursors(config.temporalPayloads.keyRing.derivedKey(REVIEW_CURSOR_KEY_PURPOSE));

  /** Runs a Temporal call with a deadline; an outage is a 503, not a 500. */
  async function callTemporal<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await temporal.withDeadline(Date.now() + TEMPORAL_TIMEOUT_MS, call);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError || error instanceof BillingError) throw error;
      logger.warn({ err: error }, `${what}: Temporal did not answer`);
      throw errors.temporalUnavailable();
    }
  }

  /** ListWorkflowExecutions, whose page token the desk hands on (client.workflow.list() keeps it). */
  const listExecutions = (query: string, pageSize: number, nextPageToken: Uint8Array | null) =>
    temporal.workflowService.listWorkflowExecutions({ namespace, query, pageSize, nextPageToken });

  async function listHeld(page: DeskPage): Promise<{ runs: HeldRun[]; nextCursor: string | null }> {
    const types = Object.keys(REVIEWABLE).map((type) => `'${type}'`);
    const query = [
      `WorkflowType IN (${types.join(', ')})`,
      `ExecutionStatus = 'Running'`,
      `(${PurchaseStatus.name} = '${HELD}' OR ${BillingStatus.name} = '${HELD}')`,
      // accountId is validated (letters, digits, _ . : -): it cannot close the quote.
      ...(page.accountId === undefined ? [] : [`AccountId = '${page.accountId}'`]),
    ].join(' AND ');
    const token = page.cursor === undefined ? null : cursors.pageTokenOf(page.cursor, query);
    let response;
    try {
      response = await temporal.withDeadline(Date.now() + TEMPORAL_TIMEOUT_MS, () =>
        listExecutions(query, page.limit, token),
      );
    } catch (error) {
      // A token this API issued that Temporal no longer reads (its visibility store changed, the
      // token aged out) fails the call; the same query without it tells that from an outage.
      if (token !== null && isGrpcServiceError(error) && (await answersWithoutToken(query))) {
        throw invalidCursor();
      }
      logger.warn({ err: error }, 'listing held workflows: Temporal did not answer');
      throw errors.temporalUnavailable();
    }
    const runs = response.executions.flatMap((raw): HeldRun[] => {
      const type = raw.type?.name ?? '';
      const workflowId = raw.execution?.workflowId;
      if (!REVIEWABLE[type] || !workflowId) return [];
      const attributes = decodeTypedSearchAttributes(raw.searchAttributes?.indexedFields);
      return [
        {
          workflowId,
          runId: raw.execution?.runId ?? '',
          type,
          eventType: attributes.get(StripeEventType) ?? null,
          accountId: attributes.get(AccountId) ?? null,
          startedAt: optionalTsToDate(raw.startTime) ?? new Date(0),
        },
      ];
    });
    const next = response.nextPageToken;
    return { runs, nextCursor: next && next.length > 0 ? cursors.cursorOf(next, query) : null };
  }

  async function answersWithoutToken(query: string): Promise<boolean> {
    try {
      await temporal.withDeadline(Date.now() + TEMPORAL_TIMEOUT_MS, () => listExecutions(query, 1, null));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * What each held run holds. The purchase a run recorded names it, in the common case; a run
   * whose purchase names another (two events about one session) says which purchase it is
   * through its `status` query.
   */
  async function describeHeld(tx: Queryable, runs: HeldRun[]): Promise<HeldItem[]> {
    const byWorkflow = new Map<string, Purchase>();
    for (const purchase of await findPurchasesFor(tx, {
      workflowIds: runs.map((r) => r.workflowId),
      ids: [],
    })) {
      byWorkflow.set(purchase.workflowId, purchase);
    }
    const asked = new Map<string, LiveStatus | null>();
    await Promise.all(
      runs
        .filter((run) => !byWorkflow.has(run.workflowId))
        .map(async (run) => asked.set(run.workflowId, await liveStatus(run))),
    );
    const otherIds = [...asked.values()].flatMap((status) => (status?.purchaseId ? [status.purchaseId] : []));
    const byId = new Map(
      (await findPurchasesFor(tx, { workflowIds: [], ids: otherIds })).map((p) => [p.id, p]),
    );
    return runs.map((run) => {
      const status = asked.get(run.workflowId) ?? null;
      const purchase =
        byWorkflow.get(run.workflowId) ?? (status?.purchaseId ? byId.get(status.purchaseId) : undefined);
      const heldHere = purchase?.workflowId === run.workflowId && purchase.status === HELD;
      return {
        workflowId: run.workflowId,
        runId: run.runId,
        kind: REVIEWABLE[run.type]?.kind ?? 'purchase',
        eventType: run.eventType,
        purchaseId: purchase?.id ?? status?.purchaseId ?? null,
        purchaseStatus: purchase?.status ?? null,
        accountId: purchase?.accountId ?? status?.accountId ?? run.accountId,
        reasonCode: (heldHere ? purchase.reasonCode : status?.reasonCode) ?? purchase?.reasonCode ?? null,
        reason: (heldHere ? purchase.reason : status?.reason) ?? purchase?.reason ?? null,
        amountCents: purchase?.amountCents ?? null,
        currency: purchase?.currency ?? null,
        credits: (heldHere ? purchase.credits : status?.credits) ?? null,
        heldSince: heldHere ? purchase.updatedAt.toISOString() : null,
        startedAt: run.startedAt.toISOString(),
      };
    });
  }

  interface LiveStatus {
    purchaseId: string | null;
    accountId: string | null;
    reasonCode: string | null;
    reason: string | null;
    credits: number | null;
  }

  /** The run's own `status` query; null when no worker answers in time. */
  async function liveStatus(run: HeldRun): Promise<LiveStatus | null> {
    try {
      return await temporal.withDeadline(Date.now() + TEMPORAL_TIMEOUT_MS, async () => {
        const handle = temporal.workflow.getHandle(run.workflowId, run.runId);
        if (run.type === INVOICE_WORKFLOW_TYPE) {
          const status = await handle.query(invoiceStatusQuery);
          return { ...status, purchaseId: status.invoiceId };
        }
        const status = await handle.query(statusQuery);
        return { ...status, purchaseId: status.checkoutSessionId };
      });
    } catch {
      return null;
    }
  }

  /** One page of what is held, and the newest rejected events. */
  async function list(page: DeskPage): Promise<{
    reviews: HeldItem[];
    nextCursor: string | null;
    rejectedEvents: { total: number; newest: RejectedEvent[] };
  }> {
    const { runs, nextCursor } = await listHeld(page);
    const [reviews, [total], newest] = await Promise.all([
      describeHeld(sql, runs),
      sql<{ count: string }[]>`SELECT count(*) AS count FROM rejected_events`,
      listRejectedEvents(sql, { limit: REJECTED_EVENTS_SHOWN, beforeId: null }),
    ]);
    return { reviews, nextCursor, rejectedEvents: { total: Number(total?.count ?? 0), newest } };
  }

  /**
   * Why a run refused a decision, or could not be sent it, as an error of the API: the
   * validator's refusal keeps its code; a run that is gone or was never a purchase or invoice
   * is told apart by one look at it.
   */
  async function decisionRefused(workflowId: string, error: unknown): Promise<Error> {
    if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      return errors.reviewNotDelivered(workflowId, config.reviewApplyWaitMs);
    }
    if (error instanceof WorkflowUpdateFailedError) {
      const failure = error.cause instanceof ApplicationFailure ? error.cause : null;
      const code = errorCodeOfFailureType(failure?.type ?? undefined);
      if (failure && code) return new BillingError(code, failure.message, failure.details?.[0]);
    } else if (!(error instanceof WorkflowNotFoundError)) {
      logger.warn({ err: error }, 'sending a review decision: Temporal did not answer');
      return errors.temporalUnavailable();
    }
    // Not a run that is held and has the update: closed, missing, or of another type.
    let description;
    try {
      description = await callTemporal('describing a workflow', () =>
        temporal.workflow.getHandle(workflowId).describe(),
      );
    } catch (described) {
      if (described instanceof WorkflowNotFoundError) return errors.reviewNotFound(workflowId);
      throw described;
    }
    const reviewable = REVIEWABLE[description.type];
    if (!reviewable) return errors.reviewNotFound(workflowId);
    const stage = description.typedSearchAttributes.get(reviewable.stage) ?? null;
    if (description.status.name !== 'RUNNING') return errors.notHeldForReview(workflowId, stage);
    logger.error({ err: error, workflowId }, 'a review decision failed in its workflow');
    return error instanceof Error ? error : new Error(String(error));
  }

  /**
   * The decision on a held run, as its `decide` update: delivered, validated and applied by the
   * run (the grant or closing and its audit row in one transaction), which answers what it did.
   * One call with a deadline, no lock and no polling: a refusal of the validator is the API's
   * error (409 and the like); a run that takes the decision and cannot apply it answers
   * `applied: false`; no answer in time is 503 `review_not_delivered`.
   */
  async function decide(
    workflowId: string,
    request: DecisionRequest,
    reviewer: string,
  ): Promise<ReviewAnswer> {
    const decision: ReviewDecision = {
      decision: request.decision,
      reviewer,
      note: request.note,
      ...(request.credits === undefined ? {} : { credits: request.credits }),
    };
    try {
      return await temporal.withDeadline(Date.now() + config.reviewApplyWaitMs, () =>
        temporal.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [decision] }),
      );
    } catch (error) {
      throw await decisionRefused(workflowId, error);
    }
  }

  return { list, decide };
}
