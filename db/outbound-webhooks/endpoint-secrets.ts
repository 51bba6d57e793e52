import { randomBytes } from 'node:crypto';
import type { PayloadKeyRing } from '../../config/payload-codec';
import { openSecret, sealSecret, SecretUnavailableError } from '../../config/sealed-secrets';
import type { Queryable, Sql } from '../client';

/**
 * An endpoint's signing key at rest: sealed with the payload key ring (config/sealed-secrets.ts),
 * never stored in clear. Rows written before sealing existed hold their secret in clear (`secret`);
 * the key they sign with is that text's bytes, and sealing keeps exactly those bytes, so nothing
 * changes for their receivers.
 *
 * Shown to its owner the way Standard Webhooks (standardwebhooks.com) writes secrets: `whsec_`
 * and the key's bytes in base64, which every Standard Webhooks library takes as it is.
 */

/** A new endpoint's key: 32 random bytes (the specification asks for 24 to 64). */
export const ENDPOINT_KEY_BYTES = 32;
export const SECRET_PREFIX = 'whsec_';

export const newEndpointKey = (): Buffer => randomBytes(ENDPOINT_KEY_BYTES);

/** The secret as its owner is given it: `whsec_<base64 of the key bytes>`. */
export const presentEndpointSecret = (key: Uint8Array): string =>
  `${SECRET_PREFIX}${Buffer.from(key).toString('base64')}`;

/** How an endpoint's key is stored: in clear (rows from before sealing) or sealed. */
export interface StoredEndpointKey {
  clear: string | null;
  sealed: Buffer | null;
  keyId: string | null;
}

// The sealed key opens only on its own endpoint's row.
const context = (endpointId: string) => `webhook-endpoint:${endpointId}`;

export function sealEndpointKey(ring: PayloadKeyRing, endpointId: string, key: Uint8Array) {
  return sealSecret(ring, key, context(endpointId));
}

/** The key bytes an endpoint signs with; throws `SecretUnavailableError` when the ring cannot open it. */
export function openEndpointKey(ring: PayloadKeyRing, endpointId: string, stored: StoredEndpointKey): Buffer {
  if (stored.sealed !== null && stored.keyId !== null) {
    return openSecret(ring, { keyId: stored.keyId, sealed: stored.sealed }, context(endpointId));
  }
  // The bytes an endpoint from before sealing has always been signed with.
  if (stored.clear !== null) return Buffer.from(stored.clear, 'utf8');
  throw new SecretUnavailableError('the endpoint has no secret');
}

/**
 * Seals an endpoint's clear secret, only if it is still the one read (a concurrent sealing, or a
 * rotation, leaves it alone). True when this call sealed it.
 */
export async function sealClearEndpointSecret(
  sql: Queryable,
  ring: PayloadKeyRing,
  endpointId: string,
  clear: string,
): Promise<boolean> {
  const { keyId, sealed } = sealEndpointKey(ring, endpointId, Buffer.from(clear, 'utf8'));
  const rows = await sql`
    UPDATE webhook_endpoints SET secret = NULL, secret_sealed = ${sealed}, secret_key_id = ${keyId}
    WHERE id = ${endpointId} AND secret = ${clear}
    RETURNING id`;
  return rows.length > 0;
}

export interface SealingReport {
  /** Endpoints whose clear secret was sealed now. */
  sealed: number;
  /** Endpoints sealed under an older key of the ring, sealed again under the current one. */
  resealed: number;
  /** Endpoints sealed under a key this ring does not hold (their deliveries cannot be signed). */
  unreadable: string[];
}

/**
 * Seals every clear secret, and seals again under the ring's current key what an older key
 * sealed (a rotation's previous secret too, while it still signs; one whose overlap has ended is
 * dropped): run by the API and the worker at start, so the rows of an earlier release are sealed
 * once either process of this one starts (the dispatcher also seals a clear secret it meets).
 * Each row is changed only if it is still as read, so concurrent runs and a second run change
 * nothing twice. `endpointIds` keeps a run to those endpoints (tests that share a database).
 */
export async function sealEndpointSecrets(
  sql: Sql,
  ring: PayloadKeyRing,
  options: { endpointIds?: string[] } = {},
): Promise<SealingReport> {
  const report: SealingReport = { sealed: 0, resealed: 0, unreadable: [] };
  const only = options.endpointIds ? sql`AND id = ANY (${options.endpointIds})` : sql``;
  await sql`
    UPDATE webhook_endpoints
    SET previous_secret_sealed = NULL, previous_secret_key_id = NULL, previous_secret_expires_at = NULL
    WHERE previous_secret_expires_at <= now() ${only}`;
  const rows = await sql<
    {
      id: string;
      secret: string | null;
      secret_sealed: Buffer | null;
      secret_key_id: string | null;
      previous_secret_sealed: Buffer | null;
      previous_secret_key_id: string | null;
    }[]
  >`
    SELECT id, secret, secret_sealed, secret_key_id, previous_secret_sealed, previous_secret_key_id
    FROM webhook_endpoints
    WHERE (secret IS NOT NULL OR secret_key_id <> ${ring.currentKeyId}
           OR previous_secret_key_id <> ${ring.currentKeyId}) ${only}
    ORDER BY id`;
  for (const row of rows) {
    if (row.secret !== null) {
      if (await sealClearEndpointSecret(sql, ring, row.id, row.secret)) report.sealed += 1;
    } else if (
      row.secret_sealed !== null &&
      row.secret_key_id !== null &&
      row.secret_key_id !== ring.currentKeyId
    ) {
      const moved = await resealColumn(sql, ring, row.id, 'secret', {
        sealed: row.secret_sealed,
        keyId: row.secret_key_id,
      });
      if (moved === 'unreadable') report.unreadable.push(row.id);
      if (moved === 'resealed') report.resealed += 1;
    }
    if (
      row.previous_secret_sealed !== null &&
      row.previous_secret_key_id !== null &&
      row.previous_secret_key_id !== ring.currentKeyId
    ) {
      // A previous secret that cannot be opened signs nothing: left to expire.
      await resealColumn(sql, ring, row.id, 'previous_secret', {
        sealed: row.previous_secret_sealed,
        keyId: row.previous_secret_key_id,
      });
    }
  }
  return report;
}

/** Seals one stored key again under the ring's current key, if it is still as read. */
async function resealColumn(
  sql: Sql,
  ring: PayloadKeyRing,
  endpointId: string,
  column: 'secret' | 'previous_secret',
  stored: { sealed: Buffer; keyId: string },
): Promise<'resealed' | 'unreadable' | 'moved_on'> {
  let key: Buffer;
  try {
    key = openEndpointKey(ring, endpointId, { clear: null, ...stored });
  } catch (error) {
    if (!(error instanceof SecretUnavailableError)) throw error;
    return 'unreadable';
  }
  const next = sealEndpointKey(ring, endpointId, key);
  const sealedColumn = sql(`${column}_sealed`);
  const keyColumn = sql(`${column}_key_id`);
  const moved = await sql`
    UPDATE webhook_endpoints SET ${sealedColumn} = ${next.sealed}, ${keyColumn} = ${next.keyId}
    WHERE id = ${endpointId} AND ${sealedColumn} = ${stored.sealed}
    RETURNING id`;
  return moved.length > 0 ? 'resealed' : 'moved_on';
}

/**
 * `sealEndpointSecrets` as a process runs it at start: it never stops the start (the database may
 * be down; the dispatcher seals what it meets), and it logs counts and endpoint IDs, no secret.
 */
export async function sealEndpointSecretsAtStart(
  sql: Sql,
  ring: PayloadKeyRing,
  logger: { info(fields: object, message: string): void; warn(fields: object, message: string): void },
): Promise<void> {
  try {
    const report = await sealEndpointSecrets(sql, ring);
    if (report.sealed + report.resealed > 0) {
      logger.info({ ...report, keyId: ring.currentKeyId }, 'webhook endpoint secrets sealed');
    }
    if (report.unreadable.length > 0) {
      logger.warn(
        { endpoints: report.unreadable },
        'webhook endpoint secrets sealed with a key not in TEMPORAL_PAYLOAD_KEYS: their deliveries cannot be signed',
      );
    }
  } catch (error) {
    // The message only: a driver error may carry the statement's parameters, a clear secret among them.
    const reason = error instanceof Error ? error.message : String(error);
    logger.warn({ reason }, 'webhook endpoint secrets not sealed at start; the dispatcher seals them on use');
  }
}
