import { isGrpcServiceError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import type { Logger } from '../../config/logger';
import type { PayloadKeyRing } from '../../config/payload-codec';
import { recordAudit, workflowSubject } from '../../db/audit/audit-log';
import type { Queryable, Sql } from '../../db/client';
import { findPurchasesFor, type Purchase } from '../../db/purchases/purchases';
import { listRejectedEvents } from '../../db/stripe/rejected-events';
import { BillingError } from '../../domain/errors';
import { INVOICE_WORKFLOW_TYPE, invoiceStatusQuery } from '../../workflows/subscriptions/contract';
import { PURCHASE_WORKFLOW_TYPE, statusQuery } from '../../workflows/purchases/contract';
import { reviewSignal, type ReviewDecision } from '../../workflows/reviews/contract';
import {
  AccountId,
  BillingStatus,
  PurchaseStatus,
  StripeEventType,
} from '../../workflows/shared/search-attributes';
import { invalidCursor, REVIEW_CURSOR_KEY_PURPOSE, reviewCursors } from '../../temporal/review-cursors';
import { errors } from '../errors';
import { presentRejectedEvent } from './rejected-events';

const HELD = 'held_for_review';
const TEMPORAL_TIMEOUT_MS = 3000;
const REJECTED_EVENTS_SHOWN = 5;

/** The workflows that can hold a payment for a reviewer, and the attribute that shows their stage. */
const REVIEWABLE: Record<string, { kind: 'purchase' | 'invoice'; stage: StageKey }> = {
  [PURCHASE_WORKFLOW_TYPE]: { kind: 'purchase', stage: PurchaseStatus },
  [INVOICE_WORKFLOW_TYPE]: { kind: 'invoice', stage: BillingStatus },
};
type StageKey = typeof PurchaseStatus;

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

/** A reviewer's decision as the API takes it (api/routes/reviews.ts validates it). */
export interface DecisionRequest {
  decision: 'approve' | 'reject';
  credits?: number | undefined;
  note: string;
}

/**
 * The review desk: purchases and invoices held for review (a Temporal visibility query on their
 * stage attributes) and the decision on one (the `review` signal, the reviewer being the API
 * key's name), each decision recorded in the audit log. Admin keys only (api/routes/reviews.ts).
 */
export function reviewDesk({
  sql,
  temporal,
  logger,
  config,
}: {
  sql: Sql;
  temporal: Client;
  logger: Logger;
  config: {
    /** How long a decision waits for the workflow to take it in before the answer is 202. */
    reviewApplyWaitMs: number;
    /** The payload key ring, from which the cursors' MAC key is derived. */
    temporalPayloads: { keyRing: PayloadKeyRing };
  };
}) {
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

  async function listHeld(page: {
    limit: number;
    cursor?: string | undefined;
    accountId?: string | undefined;
  }): Promise<{ runs: HeldRun[]; nextCursor: string | null }> {
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

  /**
   * Where a run is once it has taken in what it was sent: waits (a bounded time) until it has
   * no workflow task pending, then reads its stage attribute, which that task updated.
   */
  async function settledRun(workflowId: string) {
    const handle = temporal.workflow.getHandle(workflowId);
    const deadline = Date.now() + config.reviewApplyWaitMs;
    for (;;) {
      let description;
      try {
        description = await callTemporal('describing a workflow', () => handle.describe());
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return null;
        throw error;
      }
      const reviewable = REVIEWABLE[description.type];
      if (!reviewable) return null;
      const running = description.status.name === 'RUNNING';
      const settled = !running || !description.raw.pendingWorkflowTask;
      if (settled || Date.now() >= deadline) {
        return {
          runId: description.runId,
          type: description.type,
          running,
          settled,
          stage: description.typedSearchAttributes.get(reviewable.stage) ?? null,
          eventType: description.typedSearchAttributes.get(StripeEventType) ?? null,
          accountId: description.typedSearchAttributes.get(AccountId) ?? null,
          startedAt: description.startTime,
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** One page of what is held, and the newest rejected events. */
  async function list(query: { limit: number; cursor?: string | undefined; accountId?: string | undefined }) {
    const { runs, nextCursor } = await listHeld(query);
    const [reviews, [total], newest] = await Promise.all([
      describeHeld(sql, runs),
      sql<{ count: string }[]>`SELECT count(*) AS count FROM rejected_events`,
      listRejectedEvents(sql, { limit: REJECTED_EVENTS_SHOWN, beforeId: null }),
    ]);
    return {
      reviews,
      nextCursor,
      rejectedEvents: { total: Number(total?.count ?? 0), newest: newest.map(presentRejectedEvent) },
    };
  }

  /** Sends the decision on a held run and records it; `applied` once the run has taken it in. */
  async function decide(workflowId: string, body: DecisionRequest, reviewer: string) {
    const decision: ReviewDecision = {
      decision: body.decision,
      reviewer,
      note: body.note,
      ...(body.credits === undefined ? {} : { credits: body.credits }),
    };
    // One decision at a time per workflow, across API replicas: the second of two concurrent
    // approvals finds the first applied (409), so one is sent, granted and audited.
    return sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`review:${workflowId}`}, 0))`;
      const run = await settledRun(workflowId);
      if (!run) throw errors.reviewNotFound(workflowId);
      if (!run.running || run.stage !== HELD) throw errors.notHeldForReview(workflowId, run.stage);
      if (!run.settled) throw errors.reviewInProgress(workflowId);
      const [held] = await describeHeld(tx, [{ ...run, workflowId }]);
      await callTemporal('signalling a review decision', () =>
        temporal.workflow.getHandle(workflowId, run.runId).signal(reviewSignal, decision),
      );
      // Temporal has the decision: from here it stands, so it is recorded whatever follows.
      const after = await settledRun(workflowId).catch(() => null);
      const applied = after?.settled === true;
      const stage = after?.stage ?? null;
      const entry = await recordAudit(tx, {
        actor: reviewer,
        action: body.decision === 'approve' ? 'review.approved' : 'review.rejected',
        subject: workflowSubject(workflowId),
        before: { stage: HELD, ...held },
        after: { decision: body.decision, credits: body.credits ?? null, stage, applied },
        reason: body.note,
      });
      return { applied, stage, auditId: entry.id };
    });
  }

  return { list, decide };
}
