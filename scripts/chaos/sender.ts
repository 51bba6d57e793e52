import { webhookRequest } from '../../stripe/fixtures/index';
import { sleep } from './processes';
import { Random } from './random';
import type { Plan } from './workload';

/**
 * Delivers the plan's events at a steady rate, as Stripe does: each delivery is retried with
 * backoff until the endpoint answers 2xx (an outage, a 503 while Temporal is down, a connection
 * refused while the API restarts, a request that hangs), and each attempt is signed anew.
 */

export const REQUEST_TIMEOUT_MS = 20_000;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 10_000;
/** A 4xx cannot be an outage: retried a few times (as Stripe would), then counted as a defect. */
export const MAX_CLIENT_ERRORS = 5;

/** The pause before attempt `tries + 1`: doubling from half a second to ten, with jitter. */
export const retryDelayMs = (tries: number, jitter: Random) =>
  Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (tries - 1)) * jitter.between(0.5, 1.5);

/** A request that got no answer, by the network error's code (ECONNREFUSED, …) or its name. */
export function networkFailure(error: unknown): string {
  const err = error as Error & { cause?: { code?: string } };
  return err.cause?.code ?? err.name;
}

export interface EventDelivery {
  /** 2xx answers by their `status`: started | duplicate | ignored. */
  answers: Record<string, number>;
  attempts: number;
}

export interface SendResult {
  deliveries: number;
  attempts: number;
  /** Failed attempts by HTTP status or network error code, each later retried. */
  failures: Record<string, number>;
  answers: Record<string, number>;
  /** Deliveries never acknowledged (4xx every time, or past the deadline). */
  undelivered: number;
  /** Per event, in plan order. */
  perEvent: EventDelivery[];
  maxAttempts: number;
  sendMs: number;
  /** When the last delivery was acknowledged (epoch ms). */
  lastAckAt: number;
}

export const sum = (counts: Record<string, number>) =>
  Object.values(counts).reduce((total, count) => total + count, 0);

export function bump(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

async function attempt(
  url: string,
  payload: string,
  secret: string,
): Promise<{ outcome: string; answer: string | null }> {
  try {
    const response = await fetch(url, {
      ...webhookRequest(payload, secret),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let answer: string | null = null;
    try {
      const body = JSON.parse(text) as { status?: unknown; error?: { code?: unknown } };
      if (typeof body.status === 'string') answer = body.status;
      else if (typeof body.error?.code === 'string') answer = body.error.code;
    } catch {
      // not JSON
    }
    return { outcome: String(response.status), answer };
  } catch (error) {
    return { outcome: networkFailure(error), answer: null };
  }
}

export async function sendPlan(options: {
  plan: Plan;
  url: string;
  secret: string;
  rate: number;
  /** Retrying stops here (epoch ms): a delivery still failing then is undelivered. */
  deadline: number;
  stopped: () => boolean;
  progress: (line: string) => void;
}): Promise<SendResult> {
  const { plan, url, secret } = options;
  const jitter = new Random(plan.seed, 'retry-jitter');
  const result: SendResult = {
    deliveries: 0,
    attempts: 0,
    failures: {},
    answers: {},
    undelivered: 0,
    perEvent: plan.events.map(() => ({ answers: {}, attempts: 0 })),
    maxAttempts: 0,
    sendMs: 0,
    lastAckAt: 0,
  };
  let acknowledged = 0;
  let retrying = 0;

  const deliver = async (eventIndex: number): Promise<void> => {
    const event = plan.events[eventIndex];
    const record = result.perEvent[eventIndex];
    if (!event || !record) return;
    let clientErrors = 0;
    let wasRetrying = false;
    try {
      for (let tries = 1; ; tries += 1) {
        result.attempts += 1;
        record.attempts += 1;
        result.maxAttempts = Math.max(result.maxAttempts, tries);
        const { outcome, answer } = await attempt(url, event.payload, secret);
        if (/^2\d\d$/.test(outcome)) {
          bump(result.answers, answer ?? 'unparsed');
          bump(record.answers, answer ?? 'unparsed');
          acknowledged += 1;
          result.lastAckAt = Date.now();
          return;
        }
        bump(result.failures, answer ? `${outcome} ${answer}` : outcome);
        if (/^4\d\d$/.test(outcome)) clientErrors += 1;
        if (clientErrors >= MAX_CLIENT_ERRORS || Date.now() > options.deadline || options.stopped()) {
          result.undelivered += 1;
          return;
        }
        if (!wasRetrying) {
          wasRetrying = true;
          retrying += 1;
        }
        await sleep(retryDelayMs(tries, jitter));
      }
    } finally {
      if (wasRetrying) retrying -= 1;
    }
  };

  const plannedDeliveries = plan.slots.reduce((total, slot) => total + slot.copies, 0);
  const started = Date.now();
  const inFlight: Promise<void>[] = [];
  const report = setInterval(() => {
    options.progress(
      `sent ${result.deliveries}/${plannedDeliveries} deliveries, acknowledged ${acknowledged}, ` +
        `${retrying} being retried, ${sum(result.failures)} failed attempts so far`,
    );
  }, 10_000);
  try {
    for (const [index, slot] of plan.slots.entries()) {
      if (options.stopped()) break;
      const due = started + (index * 1000) / options.rate;
      if (due > Date.now()) await sleep(due - Date.now());
      for (let copy = 0; copy < slot.copies; copy += 1) {
        result.deliveries += 1;
        inFlight.push(deliver(slot.eventIndex));
      }
    }
    result.sendMs = Date.now() - started;
    await Promise.all(inFlight);
  } finally {
    clearInterval(report);
  }
  return result;
}
