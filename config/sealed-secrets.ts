import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { PayloadKeyRing } from './payload-codec';

/**
 * Secrets the service must read back to use (an endpoint's signing key), kept in the database
 * sealed with the payload key ring (`TEMPORAL_PAYLOAD_KEYS`): AES-256-GCM under a fresh 96-bit
 * nonce, with the key's ID stored beside the ciphertext. The ciphertext is bound to its key ID and
 * to what it belongs to (`context`, e.g. the endpoint's ID), so a sealed value copied onto another
 * row does not open there. A database dump, a replica or a backup holds ciphertext only.
 *
 * Rotation follows the payload codec's: the first key of the ring seals, every key opens; rows
 * sealed under an older key are sealed again under the current one when a process starts
 * (`sealEndpointSecrets`), after which the older key may leave the ring.
 */

export interface SealedSecret {
  /** The ring's ID of the key that sealed it (not secret). */
  keyId: string;
  /** nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes). */
  sealed: Buffer;
}

/** A sealed secret that cannot be opened with this ring; the message names the key ID, no more. */
export class SecretUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretUnavailableError';
  }
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

// Distinct from the payload codec's, so that neither kind of ciphertext opens as the other.
const additionalData = (keyId: string, context: string) =>
  Buffer.from(`credits-billing sealed secret v1 ${keyId} ${context}`, 'utf8');

export function sealSecret(ring: PayloadKeyRing, secret: Uint8Array, context: string): SealedSecret {
  const keyId = ring.currentKeyId;
  const key = ring.keyFor(keyId) as Buffer;
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(keyId, context));
  const sealed = Buffer.concat([nonce, cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  return { keyId, sealed };
}

export function openSecret(ring: PayloadKeyRing, value: SealedSecret, context: string): Buffer {
  const key = ring.keyFor(value.keyId);
  if (!key) {
    throw new SecretUnavailableError(
      `sealed with key "${value.keyId}", which is not in TEMPORAL_PAYLOAD_KEYS`,
    );
  }
  const { sealed } = value;
  if (sealed.length < NONCE_BYTES + TAG_BYTES)
    throw new SecretUnavailableError('the sealed secret is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(additionalData(value.keyId, context));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new SecretUnavailableError(`the secret sealed with key "${value.keyId}" failed authentication`);
  }
}
