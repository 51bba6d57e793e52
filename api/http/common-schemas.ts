import { z } from 'zod';
import { ERROR_CODES } from '../../domain/error-codes';

/**
 * What the routes of several rooms validate alike: the error body, the IDs they share, the rules
 * of text a person wrote, paging. Each room's own schemas sit beside its routes (api/routes/*),
 * which validate with them; the OpenAPI document is generated from them, so it cannot drift
 * from the code. Request bodies are strict: an unknown field is an error, not silently dropped.
 */

export const errorResponse = z
  .object({
    error: z.object({
      // The closed list, so that a client generated from the document can switch on it.
      code: z.enum(ERROR_CODES).meta({ description: 'Stable, snake_case.', example: 'invalid_request' }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error' });

export const accountId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'letters, digits, _ . : - (at most 128)')
  .meta({ description: "The client's own account ID.", example: 'acct_42' });

export const accountParams = z.object({ id: accountId });

/** A pack of the catalog, as a checkout or an automatic top-up names it. */
export const packId = z.string().regex(/^[\x21-\x7e]{1,64}$/, '1 to 64 visible ASCII characters');

/** A count of credits (or a similar integer): at least 1, and exact as a JS number. */
export const positiveCount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const idempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, '1 to 255 visible ASCII characters')
  .meta({
    description: 'Chosen by the client; the same key replays the same result.',
    example: 'order-7731',
  });

// Characters that change how the rest of a text is shown while not being seen themselves.
// Bidirectional controls (Unicode's Bidi_Control: embeddings, overrides, isolates, marks) reorder
// what follows them, so a stored reason can read otherwise than it was written ("Trojan Source").
const BIDIRECTIONAL_CONTROL = /\p{Bidi_Control}/u;
// Invisible characters hide inside words: a zero-width space, the word joiner and invisible
// operators (U+2060–U+2064), a byte order mark.
const INVISIBLE = /[\u200B\u2060-\u2064\uFEFF]/u;
// The zero-width non-joiner and joiner are spelling in Persian and Indic scripts and hold emoji
// sequences together (👩🏽‍💻): accepted between two visible characters, refused anywhere else.
const JOINED = String.raw`[\p{L}\p{M}\p{N}\p{Extended_Pictographic}\p{Emoji_Modifier}]`;
const STRAY_JOINER = new RegExp(String.raw`(?<!${JOINED})[\u200C\u200D]|[\u200C\u200D](?!${JOINED})`, 'u');

/**
 * Text a person wrote (a reason, a note, a description): it is stored and shown to people again
 * (the ledger, the audit log, the review desk, webhook payloads), so it must read as it was
 * written and survive PostgreSQL as sent. Refused, each with its own message: control characters
 * (PostgreSQL text refuses NUL; C1 controls include a terminal escape), lone surrogates (the
 * driver would store U+FFFD, and a faithful replay would no longer match), bidirectional controls
 * and invisible characters. Every route takes such text through this one schema.
 */
export const humanText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    // Cc: C0, DEL and C1 (U+0085 is a line break, U+009B a terminal escape introducer).
    .refine((text) => !/\p{Cc}/u.test(text), 'no control characters')
    .refine((text) => !/\p{Cs}/u.test(text), 'well-formed Unicode (no lone surrogates)')
    .refine(
      (text) => !BIDIRECTIONAL_CONTROL.test(text),
      'no bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C): they reorder how the text reads',
    )
    .refine(
      (text) => !INVISIBLE.test(text) && !STRAY_JOINER.test(text),
      'no invisible characters (U+200B, U+2060–U+2064, U+FEFF; U+200C and U+200D only between two visible characters)',
    );

/** `limit` and `cursor` of a listing paged by an opaque cursor (api/cursors.ts). */
export function pageQueryFields(items: string) {
  return {
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(100)
      .default(25)
      .meta({ description: `${items} per page (1–100).` }),
    cursor: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'a cursor returned by a previous page')
      .optional()
      .meta({ description: 'The `nextCursor` of the previous page.' }),
  };
}

/** The query of a listing with nothing but paging. */
export const pageQuery = (items: string) => z.strictObject(pageQueryFields(items));
