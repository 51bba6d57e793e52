import { errors } from './errors';

// Cursors are opaque to clients: the ID of the last row of a page, base64url-encoded.
export const encodeCursor = (id: number) => Buffer.from(String(id)).toString('base64url');

export function decodeCursor(cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  const id = Number(Buffer.from(cursor, 'base64url').toString());
  if (!Number.isSafeInteger(id) || id <= 0)
    throw errors.invalidValue('cursor', 'not a cursor this API returned');
  return id;
}

/**
 * One page from rows fetched with `limit + 1`: the extra row tells whether another page
 * follows, without a count query.
 */
export function pageOf<T extends { id: number }>(
  rows: T[],
  limit: number,
): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
