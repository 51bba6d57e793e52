import {
  METADATA_ENCODING_KEY,
  ValueError,
  type DataConverter,
  type Payload,
  type PayloadCodec,
} from '@temporalio/common';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

/**
 * The payload codec of every Temporal client and worker of the service: each payload (workflow
 * inputs and results, activity inputs and results, signals, queries, failure messages) is
 * encrypted with AES-256-GCM under a fresh 96-bit nonce before it leaves the process, so the
 * Temporal server stores, and its database and UI show, only ciphertext.
 *
 * Keys come from a key ring (`TEMPORAL_PAYLOAD_KEYS`, `id:base64key,…`): the first key encrypts,
 * every key decrypts, and each payload names its key in its metadata. A rotation is therefore a
 * configuration change with no downtime: add the new key, then put it first, and keep the old
 * ones for as long as any history encrypted with them is kept (histories are immutable; nothing is
 * re-encrypted). docs/privacy.md says how, step by step.
 *
 * Payloads are not compressed: they are a few hundred bytes of JSON (an event summary, an
 * activity's answer), where deflate saves a third at best and costs about as much CPU as the
 * encryption (scripts/bench-codec.ts), and compressing before encrypting would make each
 * ciphertext's length depend on its content.
 */

/** `encoding` of an encrypted payload; anything else is passed through as it is. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key a payload was encrypted with (not secret: an ID, never key material). */
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
export const CIPHER = 'AES-256-GCM';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** First byte of the plaintext: how the original payload's metadata and data are laid out. */
const FORMAT_V1 = 1;
const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The keys a process may use. Key material is held in private fields: a ring that ends up in a
 * log line or an error shows its key IDs only.
 */
export class PayloadKeyRing {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly currentKeyId: string;

  private constructor(keys: ReadonlyMap<string, Buffer>, currentKeyId: string) {
    this.#keys = keys;
    this.currentKeyId = currentKeyId;
  }

  /**
   * Parses `id:base64key` entries, comma-separated, the encrypting key first. Issues name the
   * entry by position and key ID, never by its value.
   */
  static parse(value: string): { ring: PayloadKeyRing } | { issues: string[] } {
    const entries = value
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.length > 0);
    const issues: string[] = [];
    const keys = new Map<string, Buffer>();
    if (entries.length === 0) issues.push('at least one key is needed (id:base64key)');
    entries.forEach((entry, index) => {
      const position = `entry ${index + 1}`;
      const separator = entry.indexOf(':');
      const id = separator > 0 ? entry.slice(0, separator) : '';
      const encoded = separator > 0 ? entry.slice(separator + 1) : '';
      if (!KEY_ID_PATTERN.test(id)) {
        issues.push(`${position}: expected id:base64key, the id of 1-64 letters, digits, ".", "_" or "-"`);
        return;
      }
      if (keys.has(id)) {
        issues.push(`${position}: key ID "${id}" appears twice`);
        return;
      }
      const key = Buffer.from(encoded, 'base64');
      const padded = encoded + '='.repeat((4 - (encoded.length % 4)) % 4);
      if (!BASE64_PATTERN.test(encoded) || key.toString('base64') !== padded) {
        issues.push(`${position} (key "${id}"): the key is not standard base64`);
        return;
      }
      if (key.length !== KEY_BYTES) {
        issues.push(
          `${position} (key "${id}"): the key has ${key.length} bytes, AES-256 needs ${KEY_BYTES} ` +
            '(generate one with `openssl rand -base64 32`)',
        );
        return;
      }
      keys.set(id, key);
    });
    const currentKeyId = keys.keys().next().value;
    if (issues.length > 0 || currentKeyId === undefined) return { issues };
    return { ring: new PayloadKeyRing(keys, currentKeyId) };
  }

  /** Like `parse`, for values known to be valid (tests, constants); throws otherwise. */
  static from(value: string): PayloadKeyRing {
    const parsed = PayloadKeyRing.parse(value);
    if ('issues' in parsed) throw new ValueError(`invalid payload key ring: ${parsed.issues.join('; ')}`);
    return parsed.ring;
  }

  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  /** @internal for the codec only */
  keyFor(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }

  /**
   * A key for another purpose than payloads (`purpose` names it, e.g. `review-desk-cursor`),
   * derived with HKDF-SHA-256 from the encrypting key: a secret every replica configured with
   * this ring shares, which reveals nothing about the payload key. It changes when the
   * encrypting key does (a rotation), so what it protects must be short-lived.
   */
  derivedKey(purpose: string): Buffer {
    const key = this.#keys.get(this.currentKeyId);
    if (key === undefined) throw new ValueError('the key ring has no current key');
    return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), `credits-billing:${purpose}`, KEY_BYTES));
  }

  /** Whether any key of this ring is also in `other`, whatever its ID there. */
  sharesKeyWith(other: PayloadKeyRing): boolean {
    return [...this.#keys.values()].some((key) => other.keyIds.some((id) => other.keyFor(id)?.equals(key)));
  }

  toJSON() {
    return { currentKeyId: this.currentKeyId, keyIds: this.keyIds };
  }

  [inspect.custom]() {
    return `PayloadKeyRing { current: ${this.currentKeyId}, keys: ${this.keyIds.join(', ')} }`;
  }
}

/** A new random key ring entry, `id:base64key`. */
export function generatePayloadKey(id: string): string {
  if (!KEY_ID_PATTERN.test(id)) throw new ValueError(`not a key ID: ${id}`);
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}

// Binds each ciphertext to the key ID it names and to this format.
const additionalData = (keyId: string) =>
  Buffer.from(`credits-billing payload v${FORMAT_V1} ${keyId}`, 'utf8');

/**
 * The original payload as one byte string (the plaintext): the format byte, the number of metadata
 * entries (u16), each entry's name (u16 length, UTF-8) and value (u32 length, bytes), then the data.
 */
function serialize(payload: Payload): Buffer {
  const entries = Object.entries(payload.metadata ?? {}).map(
    ([name, value]) => [Buffer.from(name, 'utf8'), value] as const,
  );
  if (entries.length > 0xffff) throw new ValueError('too many metadata entries to encrypt');
  const data = payload.data ?? new Uint8Array();
  let length = 3 + data.length;
  for (const [name, value] of entries) {
    if (name.length > 0xffff) throw new ValueError('a metadata name too long to encrypt');
    length += 6 + name.length + value.length;
  }
  const bytes = Buffer.allocUnsafe(length);
  let offset = bytes.writeUInt8(FORMAT_V1, 0);
  offset = bytes.writeUInt16BE(entries.length, offset);
  for (const [name, value] of entries) {
    offset = bytes.writeUInt16BE(name.length, offset);
    offset += name.copy(bytes, offset);
    offset = bytes.writeUInt32BE(value.length, offset);
    bytes.set(value, offset);
    offset += value.length;
  }
  bytes.set(data, offset);
  return bytes;
}

function deserialize(bytes: Buffer): Payload {
  if (bytes[0] !== FORMAT_V1) throw new ValueError(`unknown payload format ${String(bytes[0])}`);
  let offset = 1;
  const take = (length: number): Buffer => {
    if (offset + length > bytes.length) throw new ValueError('truncated payload');
    const slice = bytes.subarray(offset, offset + length);
    offset += length;
    return slice;
  };
  const count = take(2).readUInt16BE(0);
  const metadata: Record<string, Uint8Array> = {};
  for (let index = 0; index < count; index += 1) {
    const name = fromUtf8.decode(take(take(2).readUInt16BE(0)));
    metadata[name] = take(take(4).readUInt32BE(0));
  }
  return { metadata, data: bytes.subarray(offset) };
}

function metadataText(payload: Payload, name: string): string | undefined {
  const value = payload.metadata?.[name];
  return value ? Buffer.from(value).toString('utf8') : undefined;
}

export function isEncryptedPayload(payload: Payload): boolean {
  return metadataText(payload, METADATA_ENCODING_KEY) === ENCRYPTED_ENCODING;
}

/** The key ID an encrypted payload names, or null for a payload that is not encrypted. */
export function payloadKeyId(payload: Payload): string | null {
  return isEncryptedPayload(payload) ? (metadataText(payload, KEY_ID_METADATA) ?? null) : null;
}

export class EncryptionCodec implements PayloadCodec {
  constructor(
    private readonly ring: PayloadKeyRing,
    /** False only for a development benchmark: encode leaves payloads as they are; decode still decrypts. */
    private readonly encrypt = true,
  ) {}

  encode(payloads: Payload[]): Promise<Payload[]> {
    if (!this.encrypt) return Promise.resolve(payloads);
    const keyId = this.ring.currentKeyId;
    const key = this.ring.keyFor(keyId) as Buffer;
    return new Promise((resolve) =>
      resolve(
        payloads.map((payload) => {
          const nonce = randomBytes(NONCE_BYTES);
          const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
          cipher.setAAD(additionalData(keyId));
          const sealed = Buffer.concat([
            nonce,
            cipher.update(serialize(payload)),
            cipher.final(),
            cipher.getAuthTag(),
          ]);
          return {
            metadata: {
              [METADATA_ENCODING_KEY]: utf8.encode(ENCRYPTED_ENCODING),
              [KEY_ID_METADATA]: utf8.encode(keyId),
              [CIPHER_METADATA]: utf8.encode(CIPHER),
            },
            data: sealed,
          };
        }),
      ),
    );
  }

  /**
   * Decrypts what this codec encrypted; any other payload (written before the codec was on, or
   * by a client without it) is returned as it is. A payload whose key is not in the ring, or that
   * fails authentication, is an error: a worker then retries the task until the ring is fixed.
   */
  decode(payloads: Payload[]): Promise<Payload[]> {
    // A throw in the executor rejects the promise.
    return new Promise((resolve) => resolve(payloads.map((payload) => this.decodeOne(payload))));
  }

  private decodeOne(payload: Payload): Payload {
    if (!isEncryptedPayload(payload)) return payload;
    const keyId = metadataText(payload, KEY_ID_METADATA);
    if (!keyId) throw new ValueError('an encrypted payload names no key');
    const key = this.ring.keyFor(keyId);
    if (!key) {
      throw new ValueError(
        `a payload was encrypted with key "${keyId}", which is not in TEMPORAL_PAYLOAD_KEYS`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    const sealed = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new ValueError('an encrypted payload is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(additionalData(keyId));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([
        decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new ValueError(`a payload encrypted with key "${keyId}" failed authentication`);
    }
    return deserialize(plaintext);
  }
}

/** Path of the failure converter module (it is loaded by path: the workflow bundle needs it too). */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

export interface PayloadEncryption {
  keyRing: PayloadKeyRing;
  /** False only in development, to measure what the codec costs. */
  encrypt: boolean;
  /** True when TEMPORAL_PAYLOAD_KEYS is unset and the published development key is in use. */
  developmentKey?: boolean;
}

/** What a process says at start-up when its payloads are not as private as in production. */
export function payloadEncryptionWarnings(encryption: PayloadEncryption): string[] {
  return [
    ...(encryption.developmentKey
      ? ['TEMPORAL_PAYLOAD_KEYS is not set: payloads are encrypted with the published development key']
      : []),
    ...(encryption.encrypt
      ? []
      : ['TEMPORAL_PAYLOAD_ENCRYPTION=off: new payloads reach Temporal unencrypted']),
  ];
}

/** The data converter of every Temporal client and worker of the service. */
export function temporalDataConverter(encryption: PayloadEncryption): DataConverter {
  return {
    payloadCodecs: [new EncryptionCodec(encryption.keyRing, encryption.encrypt)],
    failureConverterPath: FAILURE_CONVERTER_PATH,
  };
}
