import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { performance } from 'node:perf_hooks';
import type { ActivityConfig, ActivityDependencies } from '../dependencies';
import {
  dueHeads,
  endpointState,
  findAttempt,
  findDeliveryToAttempt,
  recordAttempt,
  type DeliveryStatus,
  type DeliveryToAttempt,
} from '../../db/outbound-webhooks/endpoints';
import { openEndpointKey, sealClearEndpointSecret } from '../../db/outbound-webhooks/endpoint-secrets';
import { SecretUnavailableError } from '../../config/sealed-secrets';
import { standardWebhookHeaders } from './standard-webhooks';
import { buildEnvelope, endpointUrlProblem } from '../../domain/outbound-events';
import { pinnedPost, systemResolver, type HostResolver } from './pinned-request';
import {
  type WebhookAttemptResult,
  type WebhookDeliveryBatch,
} from '../../workflows/outbound-webhooks/contract';

/** How deliveries are made and retried (WEBHOOK_* in the worker's configuration). */
export interface OutboundWebhookSettings {
  /** One attempt's whole budget: connect, send, the answer's status and the start of its body. */
  attemptTimeoutMs: number;
  /** Retries stop this long after the event (or its re-send by hand). */
  retryWindowMs: number;
  /** The wait after the first failure; it doubles with each failure up to `retryMaxIntervalMs`. */
  retryInitialMs: number;
  retryMaxIntervalMs: number;
  /** The longest a dispatcher waits before it looks for pending deliveries on its own. */
  pollIntervalMs: number;
  /**
   * Production: HTTPS to public hosts only, checked again at each attempt on the URL and on every
   * address its name resolves to, the connection pinned to those addresses.
   */
  production: boolean;
}

export const DEFAULT_OUTBOUND_WEBHOOK_SETTINGS: OutboundWebhookSettings = {
  attemptTimeoutMs: 10_000,
  retryWindowMs: 3 * 24 * 60 * 60_000,
  retryInitialMs: 30_000,
  retryMaxIntervalMs: 60 * 60_000,
  pollIntervalMs: 60_000,
  production: false,
};

/** The wait before attempt `failures + 1`, after `failures` failed attempts in a row. */
export function retryDelayMs(settings: OutboundWebhookSettings, failures: number): number {
  return Math.min(settings.retryInitialMs * 2 ** Math.min(failures - 1, 30), settings.retryMaxIntervalMs);
}

const EXCERPT_CHARS = 300;
const BATCH_LIMIT = 10;

// Stored text must survive PostgreSQL (no NUL) and stay short.
const printable = (text: string) =>
  text
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\p{Cs}/gu, '\uFFFD')
    .trim()
    .slice(0, EXCERPT_CHARS);

/** The start of a response body as stored: printable text, or null when there is none. */
function excerptOf(bodyStart: Buffer): string | null {
  const text = printable(bodyStart.toString('utf8'));
  return text === '' ? null : text;
}

function describeFailure(error: unknown, timeoutMs: number): string {
  // A DOMException (from AbortSignal.timeout) of another realm is no `instanceof Error`.
  if ((error as { name?: unknown } | null)?.name === 'TimeoutError') {
    return `timeout: no answer within ${timeoutMs} ms`;
  }
  // Node's socket errors carry their code; a wrapped one carries it in its cause.
  const coded = error as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const cause = typeof coded?.code === 'string' ? coded : coded?.cause;
  if (typeof cause?.code === 'string') {
    const detail = typeof cause.message === 'string' ? cause.message : '';
    return printable(`${cause.code}: ${detail}`);
  }
  return printable(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}

function resultOf(status: DeliveryStatus, responseStatus: number | null): WebhookAttemptResult {
  const outcome = status === 'delivered' ? 'delivered' : status === 'failed' ? 'failed' : 'retrying';
  return { outcome, responseStatus };
}

/**
 * What the outbound webhook activities use: the database, the delivery settings (defaults when
 * absent) and the key ring that opens endpoint secrets (without it, nothing can be signed: each
 * attempt is recorded as failed, saying so).
 */
export type OutboundWebhookActivityDependencies = Pick<ActivityDependencies, 'sql' | 'resolveHost'> & {
  config: Pick<ActivityConfig, 'outboundWebhooks' | 'secretKeys'>;
};

/**
 * Outbound webhooks: the dispatcher's look at its endpoint, and one signed attempt of one
 * delivery. Neither holds a transaction open across the network.
 */
export function createOutboundWebhookActivities<D extends OutboundWebhookActivityDependencies>(deps: D) {
  const { sql } = deps;
  const settings = deps.config.outboundWebhooks ?? DEFAULT_OUTBOUND_WEBHOOK_SETTINGS;
  const ring = deps.config.secretKeys;
  const resolveHost: HostResolver = deps.resolveHost ?? systemResolver;

  /**
   * The keys a delivery is signed with, opened for it: the endpoint's, then the one a rotation
   * replaced while it still signs (skipped if this ring cannot open it). A key still in clear (an
   * earlier release's row) is sealed now.
   */
  async function signingKeys(endpoint: DeliveryToAttempt['endpoint']): Promise<Buffer[]> {
    if (!ring) throw new SecretUnavailableError('the worker has no key ring (TEMPORAL_PAYLOAD_KEYS)');
    const key = openEndpointKey(ring, endpoint.id, endpoint.key);
    if (endpoint.key.clear !== null)
      await sealClearEndpointSecret(sql, ring, endpoint.id, endpoint.key.clear);
    const keys = [key];
    if (endpoint.previousKey) {
      try {
        keys.push(openEndpointKey(ring, endpoint.id, endpoint.previousKey));
      } catch (error) {
        if (!(error instanceof SecretUnavailableError)) throw error;
      }
    }
    return keys;
  }

  return {
    async takeWebhookDeliveries(input: { endpointId: string }): Promise<WebhookDeliveryBatch> {
      const endpoint = await endpointState(sql, input.endpointId);
      const pollIntervalMs = settings.pollIntervalMs;
      if (endpoint !== 'active') return { endpoint, due: [], nextDueInMs: null, pollIntervalMs };
      const { due, nextDueInMs } = await dueHeads(sql, input.endpointId, BATCH_LIMIT);
      return { endpoint, due, nextDueInMs, pollIntervalMs };
    },

    /**
     * Makes attempt number `attempt` of a delivery, records it (status, latency, response code,
     * a short error and the start of the body) and schedules the next one, or gives up once
     * the retry window is over. If that attempt was already recorded (a retry of this activity),
     * answers what it came to without sending again.
     */
    async attemptWebhookDelivery(input: {
      deliveryId: number;
      attempt: number;
    }): Promise<WebhookAttemptResult> {
      const delivery = await findDeliveryToAttempt(sql, input.deliveryId);
      if (!delivery) return { outcome: 'skipped', responseStatus: null };
      if (delivery.attempts >= input.attempt) {
        const recorded = await findAttempt(sql, input.deliveryId, input.attempt);
        if (!recorded) return { outcome: 'skipped', responseStatus: null };
        return resultOf(recorded.succeeded ? 'delivered' : delivery.status, recorded.responseStatus);
      }
      if (
        delivery.status !== 'pending' ||
        delivery.attempts !== input.attempt - 1 ||
        !delivery.endpoint.enabled
      ) {
        return { outcome: 'skipped', responseStatus: null };
      }

      const body = JSON.stringify(buildEnvelope(delivery.event));
      const problem = endpointUrlProblem(delivery.endpoint.url, settings.production);
      let responseStatus: number | null = null;
      let responseExcerpt: string | null = null;
      let error: string | null = problem && printable(`url refused: ${problem}`);
      let keys: Buffer[] | null = null;
      if (!problem) {
        try {
          keys = await signingKeys(delivery.endpoint);
        } catch (failure) {
          if (!(failure instanceof SecretUnavailableError)) throw failure;
          error = printable(`not signed: ${failure.message}`);
        }
      }
      const started = performance.now();
      if (keys) {
        try {
          const answer = await pinnedPost({
            url: new URL(delivery.endpoint.url),
            body,
            signal: AbortSignal.timeout(settings.attemptTimeoutMs),
            resolveHost,
            production: settings.production,
            maxBodyBytes: EXCERPT_CHARS * 4,
            headers: {
              'content-type': 'application/json',
              'user-agent': 'credits-billing-webhooks/1',
              'billing-event-id': delivery.event.id,
              'billing-event-type': delivery.event.type,
              ...standardWebhookHeaders(keys, {
                id: delivery.event.id,
                timestamp: Math.floor(Date.now() / 1000),
                body,
              }),
            },
          });
          if (answer.kind === 'refused') {
            error = printable(`url refused: ${answer.reason}`);
          } else {
            responseStatus = answer.status;
            responseExcerpt = excerptOf(answer.bodyStart);
            if (answer.status < 200 || answer.status > 299) error = `answered HTTP ${answer.status}`;
          }
        } catch (failure) {
          error = describeFailure(failure, settings.attemptTimeoutMs);
        }
      }
      const latencyMs = Math.round(performance.now() - started);
      const succeeded = error === null;
      const delay = retryDelayMs(settings, input.attempt);
      const retryInMs =
        succeeded || delivery.windowElapsedMs + latencyMs + delay > settings.retryWindowMs ? null : delay;
      const status = await recordAttempt(sql, input.deliveryId, {
        attempt: input.attempt,
        succeeded,
        responseStatus,
        latencyMs,
        error,
        responseExcerpt,
        manual: delivery.resendRequested,
        retryInMs,
      });
      if (status === null) {
        // Moved on while this attempt was out (a re-send, a retry of this activity, a deletion).
        const recorded = await findAttempt(sql, input.deliveryId, input.attempt);
        return recorded
          ? resultOf(recorded.succeeded ? 'delivered' : 'pending', recorded.responseStatus)
          : { outcome: 'skipped', responseStatus: null };
      }
      return resultOf(status, responseStatus);
    },
  };
}

/** The settings from the worker's configuration (durations as Temporal writes them). */
export function outboundWebhookSettings(
  config: {
    attemptTimeoutMs: number;
    retryInitial: Duration;
    retryMaxInterval: Duration;
    retryWindow: Duration;
    dispatchPoll: Duration;
  },
  production: boolean,
): OutboundWebhookSettings {
  return {
    attemptTimeoutMs: config.attemptTimeoutMs,
    retryInitialMs: msToNumber(config.retryInitial),
    retryMaxIntervalMs: msToNumber(config.retryMaxInterval),
    retryWindowMs: msToNumber(config.retryWindow),
    pollIntervalMs: msToNumber(config.dispatchPoll),
    production,
  };
}
