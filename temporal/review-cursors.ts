import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors } from '../domain/errors';

/** What keys the review desk's cursors (config/payload-codec.ts `derivedKey`). */
export const REVIEW_CURSOR_KEY_PURPOSE = 'review-desk-cursor';

const MAC_BYTES = 16;

/**
 * The review desk's page cursors: Temporal's visibility page token behind a MAC (HMAC-SHA-256,
 * 16 bytes) of the token and the visibility query it belongs to, keyed by a secret every API
 * replica shares (derived from the payload key ring). A cursor this API did not return, or
 * returned for other filters, fails the check and is refused (400) before Temporal sees it:
 * without the key nobody can make one that passes.
 */
export function reviewCursors(key: Buffer) {
  const mac = (token: Uint8Array, query: string) =>
    createHmac('sha256', key)
      // The query's length first, so that no (query, token) pair reads as another.
      .update(`${Buffer.byteLength(query)}:${query}`)
      .update(token)
      .digest()
      .subarray(0, MAC_BYTES);

  return {
    cursorOf: (token: Uint8Array, query: string): string =>
      Buffer.concat([mac(token, query), token]).toString('base64url'),

    /** The page token a cursor carries, once its MAC is checked; 400 `invalid_request` if not. */
    pageTokenOf(cursor: string, query: string): Buffer {
      const bytes = Buffer.from(cursor, 'base64url');
      const token = bytes.subarray(MAC_BYTES);
      if (bytes.length <= MAC_BYTES || !timingSafeEqual(mac(token, query), bytes.subarray(0, MAC_BYTES))) {
        throw invalidCursor();
      }
      return token;
    },
  };
}

/** A cursor refused: one this API never returned for these filters, or one Temporal no longer reads. */
export const invalidCursor = () =>
  errors.invalidValue('cursor', 'not a cursor this API returned for these filters (or no longer valid)');
