import { WorkflowNotFoundError, type WorkflowClient, type WorkflowStartOptions } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { startOnce, type StartOutcome } from '../temporal/start-once';
import { BillingStatus } from '../workflows/shared/search-attributes';
import { routeStripeEvent, type EventRoute, type RouteSettings } from './event-routes';
import { stripeEventSchema, type StripeEventEnvelope } from './objects';

/**
 * How a signed Stripe event becomes work, whichever way it came: pushed to the webhook or listed
 * by reconciliation from Stripe's Events API. Both validate with the same schemas, route with the
 * same table and start the same workflow under the same ID, so an event that arrives both ways
 * runs once.
 */

/** What to do with one event: start its workflow, acknowledge it, or reject it for good. */
export type EventIntake =
  | { action: 'start'; event: StripeEventEnvelope; route: Extract<EventRoute, { action: 'start' }> }
  | { action: 'ignore'; event: StripeEventEnvelope; reason: string }
  | { action: 'reject'; eventId: string; eventType: string | null; reasonCode: string; reason: string };

/** Validates and routes one event; `body` is its text as received, for a malformed event's ID. */
export function takeInStripeEvent(
  payload: unknown,
  body: string | Buffer,
  settings: RouteSettings,
): EventIntake {
  const parsed = stripeEventSchema.safeParse(payload);
  if (!parsed.success) {
    const { id, type } = identifyMalformedEvent(payload, body);
    return {
      action: 'reject',
      eventId: id,
      eventType: type,
      reasonCode: 'invalid_event',
      reason: z.prettifyError(parsed.error),
    };
  }
  const event = parsed.data;
  let route: EventRoute;
  try {
    route = routeStripeEvent(event, settings);
  } catch (error) {
    if (!(error instanceof z.ZodError)) throw error;
    return {
      action: 'reject',
      eventId: event.id,
      eventType: event.type,
      reasonCode: 'invalid_object',
      reason: z.prettifyError(error),
    };
  }
  return route.action === 'ignore'
    ? { action: 'ignore', event, reason: route.reason }
    : { action: 'start', event, route };
}

/**
 * The start of an event's workflow: its ID is the event's ID and a second start of that ID is
 * refused, so a redelivered or reconciled event is a duplicate, never a second run.
 */
export function eventWorkflowStart(
  route: Extract<EventRoute, { action: 'start' }>,
  eventId: string,
  taskQueue: string,
  memo?: Record<string, unknown>,
): WorkflowStartOptions {
  return {
    // A signalling route's workflow has its own ID: a plain start of it is then a duplicate.
    workflowId: route.signal?.workflowId ?? eventId,
    taskQueue,
    args: route.args,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: route.searchAttributes,
    ...(memo ? { memo } : {}),
  };
}

/** What handing an event to Temporal came to, and the workflow that has it. */
export interface EventStart {
  outcome: StartOutcome;
  /** The run started, signalled or found: a late run's own ID when the event started one. */
  workflowId: string;
}

/**
 * Hands a routed event to Temporal: a plain start, or a signal-with-start when the event belongs
 * to a workflow of its own (a top-up waiting for its payment). A start refused because that ID
 * ran already is a duplicate; every other error is the caller's to answer (503, or a retry).
 */
export async function startEventWorkflow(
  workflow: WorkflowClient,
  route: Extract<EventRoute, { action: 'start' }>,
  eventId: string,
  taskQueue: string,
  memo?: Record<string, unknown>,
): Promise<EventStart> {
  const start = eventWorkflowStart(route, eventId, taskQueue, memo);
  if (route.signal && route.afterEnd) {
    return signalOrFinish(workflow, route.workflowType, route.signal, route.afterEnd, start);
  }
  const { workflowId } = start;
  if (!route.signal) return { outcome: await startOnce(workflow, route.workflowType, start), workflowId };
  const { name, args } = route.signal;
  const outcome = await startOnce(workflow, route.workflowType, { ...start, signal: name, signalArgs: args });
  return { outcome, workflowId };
}

/**
 * An event whose work outlives its workflow (money taken must become credits): it signals the
 * run that waits for it; when that run has ended short of its goal, or is gone past the
 * namespace's retention, a run of its own under `afterEnd.workflowId` finishes the work. That
 * run may be started again only if it failed, and what it does is idempotent.
 */
type StartRoute = Extract<EventRoute, { action: 'start' }>;

async function signalOrFinish(
  workflow: WorkflowClient,
  workflowType: string,
  signal: NonNullable<StartRoute['signal']>,
  afterEnd: NonNullable<StartRoute['afterEnd']>,
  start: WorkflowStartOptions,
): Promise<EventStart> {
  const waiting = workflow.getHandle(signal.workflowId);
  try {
    await waiting.signal(signal.name, ...signal.args);
    return { outcome: 'started', workflowId: signal.workflowId };
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  try {
    const ended = await waiting.describe();
    if (afterEnd.doneStages.includes(ended.typedSearchAttributes.get(BillingStatus) ?? ''))
      return { outcome: 'duplicate', workflowId: signal.workflowId };
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
  const outcome = await startOnce(workflow, workflowType, {
    ...start,
    workflowId: afterEnd.workflowId,
    args: afterEnd.args,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
  });
  return { outcome, workflowId: afterEnd.workflowId };
}

/** Where a workflow stands, as far as handing an event to it goes. */
export interface WorkflowStanding {
  running: boolean;
  /** Its `BillingStatus` search attribute: the stage it is in, or ended in. */
  stage: string | null;
  /** Ended failed, cancelled, terminated or timed out: a start allowed only then may start it again. */
  restartable: boolean;
}

/** Where the workflow with this ID stands, or null when Temporal knows none. */
export type WorkflowLookup = (workflowId: string) => Promise<WorkflowStanding | null>;

/** Looks workflows up through the client, for what `planEventStart` asks. */
export function workflowLookup(workflow: WorkflowClient): WorkflowLookup {
  return async (workflowId) => {
    try {
      const described = await workflow.getHandle(workflowId).describe();
      return {
        running: described.status.name === 'RUNNING',
        stage: described.typedSearchAttributes.get(BillingStatus) ?? null,
        restartable: ['FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT'].includes(described.status.name),
      };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  };
}

/**
 * What `startEventWorkflow` would do with a routed event, asked without doing it (a dry run of
 * reconciliation): the workflow that would take it, and whether that is news for it (`start`: a
 * new run, or a signal to the run waiting for it) or it has it already (`duplicate`). The same
 * rules as the start's, step by step.
 */
export async function planEventStart(
  lookup: WorkflowLookup,
  route: Extract<EventRoute, { action: 'start' }>,
  eventId: string,
): Promise<{ outcome: 'start' | 'duplicate'; workflowId: string }> {
  const workflowId = route.signal?.workflowId ?? eventId;
  const standing = await lookup(workflowId);
  if (!route.signal) return { outcome: standing ? 'duplicate' : 'start', workflowId };
  // Signalled while it runs; a signal-with-start of one that ended is refused as a duplicate.
  if (standing?.running) return { outcome: 'start', workflowId };
  if (!route.afterEnd) return { outcome: standing ? 'duplicate' : 'start', workflowId };
  if (standing && route.afterEnd.doneStages.includes(standing.stage ?? '')) {
    return { outcome: 'duplicate', workflowId };
  }
  const late = await lookup(route.afterEnd.workflowId);
  return {
    outcome: late === null || late.restartable ? 'start' : 'duplicate',
    workflowId: route.afterEnd.workflowId,
  };
}

/**
 * Who a malformed but signed event is, as far as can be told: its own ID when it has a sane
 * one, else a digest of the body (the same bytes redelivered are the same rejected event).
 */
export function identifyMalformedEvent(
  payload: unknown,
  body: string | Buffer,
): { id: string; type: string | null } {
  const fields = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  const sane = (value: unknown, max: number) =>
    typeof value === 'string' && value.length > 0 && value.length <= max && /^[\x21-\x7e]+$/.test(value)
      ? value
      : null;
  const id = sane(fields.id, 255) ?? `sha256:${createHash('sha256').update(body).digest('hex')}`;
  return { id, type: sane(fields.type, 100) };
}

/**
 * Temporal refused the start for a reason no redelivery can change: a value over one of its size
 * limits (gRPC INVALID_ARGUMENT, "… exceeds size limit …"). Other INVALID_ARGUMENT answers, such
 * as a namespace without the search attributes registered, are the operator's to fix: those stay
 * outages, so the event is tried again once the configuration is right.
 */
export function permanentTemporalRefusal(error: unknown): string | null {
  const INVALID_ARGUMENT = 3;
  for (let current: unknown = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, details } = current as { code?: unknown; details?: unknown };
    if (code === INVALID_ARGUMENT && typeof details === 'string' && /exceeds size limit/i.test(details)) {
      return details;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}
