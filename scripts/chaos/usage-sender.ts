import type { CreditsClient } from '../../client/index';
import { sleep } from './processes';
import { Random } from './random';
import { bump, MAX_CLIENT_ERRORS, networkFailure, REQUEST_TIMEOUT_MS, retryDelayMs, sum } from './sender';
import type { UsagePlan } from './usage-workload';

/**
 * Sends the usage plan's batches through `POST /v1/usage` (the typed client), spread evenly over
 * the time the purchase events take and kept in step with the faults, so that the batches meet
 * them; a few go out just before the API is killed and PostgreSQL stopped (`sendAhead`). Each
 * request is retried with the same body, with the Stripe sender's backoff, until it is answered
 * 2xx: a refused connection while the API restarts, a request cut off by its kill, a 503 while
 * PostgreSQL is down. A burst's copies go out at the same moment.
 */

/** What one delivery of an event was finally answered (one per batch copy that was answered). */
export interface UsageAnswer {
  status: string;
  credits: number | null;
  ledgerEntryId: number | null;
  code: string | null;
}

export interface UsageSendResult {
  /** Requests, a burst's copies each counting. */
  requests: number;
  attempts: number;
  /** Failed attempts by HTTP status and code, or network error, each later retried. */
  failures: Record<string, number>;
  /** Per event delivery, its final answer: accepted, duplicate, refused <code>, conflict <code>. */
  answers: Record<string, number>;
  /** Requests never answered 2xx (4xx every time, or past the deadline). */
  undeliveredRequests: number;
  /** 2xx answers that did not hold one result per event sent. */
  malformedAnswers: number;
  maxAttempts: number;
  /** Per event, in plan order, every final answer it got. */
  perEvent: UsageAnswer[][];
  sendMs: number;
  /** When the last request was answered 2xx (epoch ms); 0 if none was. */
  lastAckAt: number;
}

interface ResultBody {
  status?: unknown;
  credits?: unknown;
  ledgerEntryId?: unknown;
  error?: { code?: unknown };
}

function answerOf(result: ResultBody): UsageAnswer {
  return {
    status: typeof result.status === 'string' ? result.status : 'unparsed',
    credits: typeof result.credits === 'number' ? result.credits : null,
    ledgerEntryId: typeof result.ledgerEntryId === 'number' ? result.ledgerEntryId : null,
    code: typeof result.error?.code === 'string' ? result.error.code : null,
  };
}

export interface UsageSenderOptions {
  plan: UsagePlan;
  api: CreditsClient;
  seed: number;
  /** The batches are spread over this long. */
  spreadMs: number;
  /**
   * Whether the faults planned up to this moment of the sending (ms from its start) have begun:
   * the stream waits for them, so that a fault that runs late still meets the batches planned
   * after it.
   */
  faultsCaughtUp: (atMs: number) => boolean;
  /** Retrying stops here (epoch ms): a request still failing then is undelivered. */
  deadline: number;
  stopped: () => boolean;
  progress: (line: string) => void;
}

export class UsageSender {
  private readonly result: UsageSendResult;
  private readonly jitter: Random;
  private readonly inFlight: Promise<void>[] = [];
  private next = 0;
  private answered = 0;

  constructor(private readonly options: UsageSenderOptions) {
    this.jitter = new Random(options.seed, 'usage-retry-jitter');
    this.result = {
      requests: 0,
      attempts: 0,
      failures: {},
      answers: {},
      undeliveredRequests: 0,
      malformedAnswers: 0,
      maxAttempts: 0,
      perEvent: options.plan.events.map(() => []),
      sendMs: 0,
      lastAckAt: 0,
    };
  }

  /**
   * Sends the next `count` batches now, ahead of their time: called just before a kill, so that
   * requests are inside the process (or the transaction) when it dies.
   */
  sendAhead(count: number): number {
    let sent = 0;
    while (sent < count && this.next < this.options.plan.batches.length && !this.options.stopped()) {
      this.sendBatch(this.next);
      this.next += 1;
      sent += 1;
    }
    return sent;
  }

  /** Every batch at its time, then every request until answered 2xx (or given up). */
  async run(): Promise<UsageSendResult> {
    const { plan, spreadMs } = this.options;
    const planned = plan.batches.reduce((total, batch) => total + batch.copies, 0);
    const started = Date.now();
    const report = setInterval(() => {
      this.options.progress(
        `usage: sent ${this.result.requests}/${planned} requests, answered ${this.answered}, ` +
          `${sum(this.result.failures)} failed attempts so far`,
      );
    }, 10_000);
    try {
      while (this.next < plan.batches.length && !this.options.stopped()) {
        const index = this.next;
        const atMs = (index * spreadMs) / plan.batches.length;
        if (started + atMs > Date.now()) await sleep(started + atMs - Date.now());
        while (!this.options.faultsCaughtUp(atMs) && !this.options.stopped()) await sleep(100);
        // Unless batches were sent ahead meanwhile: then the next one waits for its own time.
        if (this.next === index) this.sendAhead(1);
      }
      this.result.sendMs = Date.now() - started;
      await Promise.all(this.inFlight);
    } finally {
      clearInterval(report);
    }
    return this.result;
  }

  private sendBatch(index: number): void {
    const batch = this.options.plan.batches[index];
    if (!batch) return;
    for (let copy = 0; copy < batch.copies; copy += 1) {
      this.result.requests += 1;
      this.inFlight.push(this.deliver(batch.events));
    }
  }

  private async deliver(eventIndexes: readonly number[]): Promise<void> {
    const { plan, api } = this.options;
    const result = this.result;
    const body = { events: eventIndexes.map((index) => plan.events[index]).filter((event) => !!event) };
    let clientErrors = 0;
    for (let tries = 1; ; tries += 1) {
      result.attempts += 1;
      result.maxAttempts = Math.max(result.maxAttempts, tries);
      let outcome: string;
      try {
        const { data, error, response } = await api.POST('/v1/usage', {
          body,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        if (response.ok && data) {
          this.answered += 1;
          result.lastAckAt = Date.now();
          const results = data.results as ResultBody[];
          if (results.length !== eventIndexes.length) {
            result.malformedAnswers += 1;
            return;
          }
          eventIndexes.forEach((eventIndex, position) => {
            const answer = answerOf(results[position] ?? {});
            result.perEvent[eventIndex]?.push(answer);
            bump(result.answers, answer.code ? `${answer.status} ${answer.code}` : answer.status);
          });
          return;
        }
        const code = (error as { error?: { code?: unknown } } | undefined)?.error?.code;
        outcome = typeof code === 'string' ? `${response.status} ${code}` : String(response.status);
        if (response.status >= 400 && response.status < 500) clientErrors += 1;
      } catch (caught) {
        outcome = networkFailure(caught);
      }
      bump(result.failures, outcome);
      if (clientErrors >= MAX_CLIENT_ERRORS || Date.now() > this.options.deadline || this.options.stopped()) {
        result.undeliveredRequests += 1;
        return;
      }
      await sleep(retryDelayMs(tries, this.jitter));
    }
  }
}
