import { randomBytes } from 'node:crypto';
import { SecretUnavailableError, type SealedSecret } from '../../config/sealed-secrets';
import type { PayloadKeyRing } from '../../config/payload-codec';
import { toSafeInteger } from '../../domain/integers';
import type { OutboundEventType } from '../../domain/outbound-events';
import type { Queryable, Sql } from '../client';
import {
  newEndpointKey,
  openEndpointKey,
  presentEndpointSecret,
  sealEndpointKey,
  type StoredEndpointKey,
} from './endpoint-secrets';

/** A client's endpoint, as the API shows it: never with its secret. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  eventTypes: OutboundEventType[];
  enabled: boolean;
  /** While the secret a rotation replaced still signs beside the new one: until when. */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface EndpointRow {
  id: string;
  url: string;
  description: string | null;
  event_types: OutboundEventType[];
  enabled: boolean;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

// A previous secret whose overlap has ended is as good as gone.
const ENDPOINT_COLUMNS =
  'id, url, description, event_types, enabled, created_at, updated_at, ' +
  'CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at';

const toEndpoint = (row: EndpointRow): WebhookEndpoint => ({
  id: row.id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  enabled: row.enabled,
  previousSecretExpiresAt: row.previous_secret_expires_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomId = (length: number) =>
  Array.from(randomBytes(length), (byte) => BASE62[byte % BASE62.length]).join('');

/**
 * Creates an endpoint with a new secret, stored sealed with the key ring; the answer is the only
 * time the secret is shown.
 */
export async function createWebhookEndpoint(
  sql: Queryable,
  ring: PayloadKeyRing,
  input: { url: string; description: string | null; eventTypes: OutboundEventType[] },
): Promise<WebhookEndpoint & { secret: string }> {
  const id = `we_${randomId(24)}`;
  const key = newEndpointKey();
  const { keyId, sealed } = sealEndpointKey(ring, id, key);
  const [row] = await sql<EndpointRow[]>`
    INSERT INTO webhook_endpoints (id, url, description, event_types, secret_sealed, secret_key_id)
    VALUES (${id}, ${input.url}, ${input.description}, ${input.eventTypes}, ${sealed}, ${keyId})
    RETURNING ${sql.unsafe(ENDPOINT_COLUMNS)}`;
  if (!row) throw new Error('endpoint insert returned nothing');
  return { ...toEndpoint(row), secret: presentEndpointSecret(key) };
}

/** The longest a replaced secret may keep signing beside its successor. */
export const MAX_SECRET_OVERLAP_SECONDS = 7 * 24 * 60 * 60;

/**
 * Gives the endpoint a new key, answered (as its secret) this once. For `overlapSeconds` the key
 * it replaces keeps signing too (a second `v1,` signature in `webhook-signature`), so a receiver
 * can change its secret without rejecting a delivery; a key replaced earlier stops signing now.
 * Runs in the caller's transaction (it locks the row); null when the endpoint does not exist.
 */
export async function rotateWebhookEndpointSecret(
  tx: Queryable,
  ring: PayloadKeyRing,
  id: string,
  overlapSeconds: number,
): Promise<{ before: WebhookEndpoint; endpoint: WebhookEndpoint; secret: string } | null> {
  const [current] = await tx<
    (EndpointRow & { secret: string | null; secret_sealed: Buffer | null; secret_key_id: string | null })[]
  >`
    SELECT ${tx.unsafe(ENDPOINT_COLUMNS)}, secret, secret_sealed, secret_key_id
    FROM webhook_endpoints WHERE id = ${id} FOR NO KEY UPDATE`;
  if (!current) return null;
  let previous: SealedSecret | null = null;
  if (overlapSeconds > 0) {
    try {
      const stored = { clear: current.secret, sealed: current.secret_sealed, keyId: current.secret_key_id };
      previous = sealEndpointKey(ring, id, openEndpointKey(ring, id, stored));
    } catch (error) {
      // A key this ring cannot open signs nothing already: there is nothing to keep signing with.
      if (!(error instanceof SecretUnavailableError)) throw error;
    }
  }
  const key = newEndpointKey();
  const next = sealEndpointKey(ring, id, key);
  const [row] = await tx<EndpointRow[]>`
    UPDATE webhook_endpoints SET
      secret = NULL, secret_sealed = ${next.sealed}, secret_key_id = ${next.keyId},
      previous_secret_sealed = ${previous?.sealed ?? null},
      previous_secret_key_id = ${previous?.keyId ?? null},
      previous_secret_expires_at = ${previous ? tx`now() + ${overlapSeconds} * interval '1 second'` : null},
      updated_at = now()
    WHERE id = ${id}
    RETURNING ${tx.unsafe(ENDPOINT_COLUMNS)}`;
  if (!row) throw new Error('endpoint update returned nothing');
  return { before: toEndpoint(current), endpoint: toEndpoint(row), secret: presentEndpointSecret(key) };
}

export async function findWebhookEndpoint(sql: Queryable, id: string): Promise<WebhookEndpoint | null> {
  const [row] = await sql<EndpointRow[]>`
    SELECT ${sql.unsafe(ENDPOINT_COLUMNS)} FROM webhook_endpoints WHERE id = ${id}`;
  return row ? toEndpoint(row) : null;
}

export async function listWebhookEndpoints(sql: Queryable): Promise<WebhookEndpoint[]> {
  const rows = await sql<EndpointRow[]>`
    SELECT ${sql.unsafe(ENDPOINT_COLUMNS)} FROM webhook_endpoints ORDER BY created_at, id`;
  return rows.map(toEndpoint);
}

/**
 * Changes what is given, answering the endpoint before and after; null when it does not exist.
 * Runs in the caller's transaction (it locks the row, so `before` is what the change replaced).
 */
export async function updateWebhookEndpoint(
  tx: Queryable,
  id: string,
  change: { url?: string; description?: string | null; eventTypes?: OutboundEventType[]; enabled?: boolean },
): Promise<{ before: WebhookEndpoint; endpoint: WebhookEndpoint } | null> {
  const [current] = await tx<EndpointRow[]>`
    SELECT ${tx.unsafe(ENDPOINT_COLUMNS)} FROM webhook_endpoints WHERE id = ${id} FOR NO KEY UPDATE`;
  if (!current) return null;
  const [row] = await tx<EndpointRow[]>`
    UPDATE webhook_endpoints SET
      url = COALESCE(${change.url ?? null}, url),
      description = ${change.description === undefined ? tx`description` : change.description},
      event_types = COALESCE(${change.eventTypes ?? null}::text[], event_types),
      enabled = COALESCE(${change.enabled ?? null}::boolean, enabled),
      updated_at = now()
    WHERE id = ${id}
    RETURNING ${tx.unsafe(ENDPOINT_COLUMNS)}`;
  if (!row) throw new Error('endpoint update returned nothing');
  return { before: toEndpoint(current), endpoint: toEndpoint(row) };
}

/** Deletes the endpoint and its deliveries, answering what was deleted; null when it did not exist. */
export async function deleteWebhookEndpoint(sql: Queryable, id: string): Promise<WebhookEndpoint | null> {
  const [row] = await sql<EndpointRow[]>`
    DELETE FROM webhook_endpoints WHERE id = ${id} RETURNING ${sql.unsafe(ENDPOINT_COLUMNS)}`;
  return row ? toEndpoint(row) : null;
}

// --- deliveries -------------------------------------------------------------------------------

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryAttempt {
  attempt: number;
  at: Date;
  succeeded: boolean;
  responseStatus: number | null;
  latencyMs: number;
  error: string | null;
  responseExcerpt: string | null;
  manual: boolean;
}

export interface WebhookDelivery {
  id: number;
  endpointId: string;
  eventId: string;
  eventType: OutboundEventType;
  accountId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  deliveredAt: Date | null;
  createdAt: Date;
  /** The most recent attempts, newest first. */
  recentAttempts: DeliveryAttempt[];
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  type: OutboundEventType;
  account_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  delivered_at: Date | null;
  created_at: Date;
  /** The attempts as PostgreSQL's JSON gives them: the time as text. */
  recent: Array<Omit<DeliveryAttempt, 'at'> & { at: string }> | null;
}

/** Attempts each delivery of a listing shows. */
export const RECENT_ATTEMPTS = 20;

const toDelivery = (row: DeliveryRow): WebhookDelivery => ({
  id: toSafeInteger(row.id, 'delivery id'),
  endpointId: row.endpoint_id,
  eventId: row.event_id,
  eventType: row.type,
  accountId: row.account_id,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.status === 'pending' ? row.next_attempt_at : null,
  deliveredAt: row.delivered_at,
  createdAt: row.created_at,
  recentAttempts: (row.recent ?? []).map((a) => ({ ...a, at: new Date(a.at) })),
});

/** One page of an endpoint's deliveries, newest first, strictly older than `beforeId` when given. */
export async function listWebhookDeliveries(
  sql: Queryable,
  endpointId: string,
  page: { limit: number; beforeId: number | null; status?: DeliveryStatus | undefined },
): Promise<WebhookDelivery[]> {
  const rows = await sql<DeliveryRow[]>`
    SELECT d.id, d.endpoint_id, d.event_id, e.type, d.account_id, d.status, d.attempts,
           d.next_attempt_at, d.delivered_at, d.created_at,
           (SELECT json_agg(json_build_object(
                     'attempt', a.attempt, 'at', a.attempted_at, 'succeeded', a.succeeded,
                     'responseStatus', a.response_status, 'latencyMs', a.latency_ms, 'error', a.error,
                     'responseExcerpt', a.response_excerpt, 'manual', a.manual) ORDER BY a.attempt DESC)
            FROM (SELECT * FROM webhook_delivery_attempts
                  WHERE delivery_id = d.id ORDER BY attempt DESC LIMIT ${RECENT_ATTEMPTS}) a) AS recent
    FROM webhook_deliveries d JOIN outbound_events e ON e.id = d.event_id
    WHERE d.endpoint_id = ${endpointId}
      ${page.beforeId === null ? sql`` : sql`AND d.id < ${page.beforeId}`}
      ${page.status === undefined ? sql`` : sql`AND d.status = ${page.status}`}
    ORDER BY d.id DESC LIMIT ${page.limit}`;
  return rows.map(toDelivery);
}

/**
 * Queues a delivery to be sent again at once, whatever it came to, with a fresh retry window;
 * its next attempt is recorded as made by hand. Null when the endpoint has no such delivery.
 */
export async function requestResend(
  sql: Queryable,
  endpointId: string,
  deliveryId: number,
): Promise<WebhookDelivery | null> {
  const [row] = await sql<{ id: string }[]>`
    UPDATE webhook_deliveries
    SET status = 'pending', next_attempt_at = now(), window_started_at = now(), resend_requested = true
    WHERE id = ${deliveryId} AND endpoint_id = ${endpointId}
    RETURNING id`;
  if (!row) return null;
  const [delivery] = await listWebhookDeliveries(sql, endpointId, { limit: 1, beforeId: deliveryId + 1 });
  return delivery ?? null;
}

// --- what the dispatcher reads and writes ------------------------------------------------------

/**
 * The heads of an endpoint's pending deliveries (per account, the oldest one not yet settled:
 * an account's events arrive in order) that are due now, oldest first, and how long until the
 * next head falls due.
 */
export async function dueHeads(
  sql: Sql,
  endpointId: string,
  limit: number,
): Promise<{ due: Array<{ deliveryId: number; attempts: number }>; nextDueInMs: number | null }> {
  const heads = sql`
    SELECT DISTINCT ON (account_id) id, attempts, next_attempt_at, event_seq
    FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND status = 'pending'
    ORDER BY account_id, event_seq`;
  const due = await sql<{ id: string; attempts: number }[]>`
    SELECT id, attempts FROM (${heads}) heads WHERE next_attempt_at <= now()
    ORDER BY event_seq LIMIT ${limit}`;
  const [next] = await sql<{ in_ms: string | null }[]>`
    SELECT ceil(extract(epoch FROM min(next_attempt_at) - now()) * 1000)::bigint AS in_ms
    FROM (${heads}) heads WHERE next_attempt_at > now()`;
  return {
    due: due.map((row) => ({ deliveryId: toSafeInteger(row.id, 'delivery id'), attempts: row.attempts })),
    nextDueInMs: next?.in_ms == null ? null : Math.max(1, toSafeInteger(next.in_ms, 'due')),
  };
}

export async function endpointState(
  sql: Sql,
  endpointId: string,
): Promise<'active' | 'disabled' | 'deleted'> {
  const [row] = await sql<{ enabled: boolean }[]>`
    SELECT enabled FROM webhook_endpoints WHERE id = ${endpointId}`;
  if (!row) return 'deleted';
  return row.enabled ? 'active' : 'disabled';
}

/** Everything one attempt needs: where to, the key as stored (sealed), the event as stored. */
export interface DeliveryToAttempt {
  deliveryId: number;
  status: DeliveryStatus;
  attempts: number;
  resendRequested: boolean;
  /** Time since the delivery's retry window opened (its creation, or a re-send), by the database's clock. */
  windowElapsedMs: number;
  endpoint: {
    id: string;
    url: string;
    key: StoredEndpointKey;
    /** The key a rotation replaced, while it still signs beside `key`. */
    previousKey: StoredEndpointKey | null;
    enabled: boolean;
  };
  event: {
    id: string;
    type: OutboundEventType;
    accountId: string;
    data: Record<string, unknown>;
    createdAt: Date;
  };
}

export async function findDeliveryToAttempt(sql: Sql, deliveryId: number): Promise<DeliveryToAttempt | null> {
  const [row] = await sql<
    {
      status: DeliveryStatus;
      attempts: number;
      resend_requested: boolean;
      window_elapsed_ms: string;
      endpoint_id: string;
      url: string;
      secret: string | null;
      secret_sealed: Buffer | null;
      secret_key_id: string | null;
      previous_secret_sealed: Buffer | null;
      previous_secret_key_id: string | null;
      enabled: boolean;
      event_id: string;
      type: OutboundEventType;
      account_id: string;
      data: Record<string, unknown>;
      event_created_at: Date;
    }[]
  >`
    SELECT d.status, d.attempts, d.resend_requested,
           GREATEST(0, floor(extract(epoch FROM now() - d.window_started_at) * 1000))::bigint AS window_elapsed_ms, w.id AS endpoint_id, w.url,
           w.secret, w.secret_sealed, w.secret_key_id,
           CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret_sealed END AS previous_secret_sealed,
           w.previous_secret_key_id, w.enabled, e.id AS event_id, e.type, e.account_id, e.data, e.created_at AS event_created_at
    FROM webhook_deliveries d
    JOIN webhook_endpoints w ON w.id = d.endpoint_id
    JOIN outbound_events e ON e.id = d.event_id
    WHERE d.id = ${deliveryId}`;
  if (!row) return null;
  return {
    deliveryId,
    status: row.status,
    attempts: row.attempts,
    resendRequested: row.resend_requested,
    windowElapsedMs: toSafeInteger(row.window_elapsed_ms, 'window'),
    endpoint: {
      id: row.endpoint_id,
      url: row.url,
      key: { clear: row.secret, sealed: row.secret_sealed, keyId: row.secret_key_id },
      previousKey:
        row.previous_secret_sealed === null
          ? null
          : { clear: null, sealed: row.previous_secret_sealed, keyId: row.previous_secret_key_id },
      enabled: row.enabled,
    },
    event: {
      id: row.event_id,
      type: row.type,
      accountId: row.account_id,
      data: row.data,
      createdAt: row.event_created_at,
    },
  };
}

/** The outcome of attempt number `attempt` of a delivery: recorded once, whoever retries. */
export interface AttemptRecord {
  attempt: number;
  succeeded: boolean;
  responseStatus: number | null;
  latencyMs: number;
  error: string | null;
  responseExcerpt: string | null;
  manual: boolean;
  /** After a failure: when to try again, or null to give up. */
  retryInMs: number | null;
}

/**
 * Records an attempt and moves the delivery on, in one transaction, only if no other attempt
 * was recorded meanwhile (a retried activity finds its attempt recorded and changes nothing).
 * Answers the delivery's status after it.
 */
export async function recordAttempt(
  sql: Sql,
  deliveryId: number,
  record: AttemptRecord,
): Promise<DeliveryStatus | null> {
  return sql.begin(async (tx) => {
    const [moved] = await tx<{ status: DeliveryStatus }[]>`
      UPDATE webhook_deliveries SET
        attempts = ${record.attempt},
        last_attempt_at = now(),
        resend_requested = false,
        status = ${record.succeeded ? 'delivered' : record.retryInMs === null ? 'failed' : 'pending'},
        delivered_at = ${record.succeeded ? tx`now()` : tx`delivered_at`},
        next_attempt_at = ${record.retryInMs === null ? tx`next_attempt_at` : tx`now() + ${record.retryInMs}::double precision * interval '1 millisecond'`}
      WHERE id = ${deliveryId} AND attempts = ${record.attempt - 1} AND status = 'pending'
      RETURNING status`;
    if (!moved) return null;
    await tx`
      INSERT INTO webhook_delivery_attempts (delivery_id, attempt, succeeded, response_status, latency_ms,
                                             error, response_excerpt, manual)
      VALUES (${deliveryId}, ${record.attempt}, ${record.succeeded}, ${record.responseStatus},
              ${record.latencyMs}, ${record.error}, ${record.responseExcerpt}, ${record.manual})`;
    return moved.status;
  });
}

/** What attempt number `attempt` of a delivery came to, if it was recorded. */
export async function findAttempt(
  sql: Sql,
  deliveryId: number,
  attempt: number,
): Promise<{ succeeded: boolean; responseStatus: number | null } | null> {
  const [row] = await sql<{ succeeded: boolean; response_status: number | null }[]>`
    SELECT succeeded, response_status FROM webhook_delivery_attempts
    WHERE delivery_id = ${deliveryId} AND attempt = ${attempt}`;
  return row ? { succeeded: row.succeeded, responseStatus: row.response_status } : null;
}
