import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { errors } from './errors';

// Keys are compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit
// that would reveal a key's length or prefix.
const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Checks the Bearer key against every configured key and records which one it was as
 * `res.locals.apiKeyName` (`key-1`, `key-2`… in configuration order), never the key itself.
 */
export function requireApiKey(apiKeys: readonly string[]): RequestHandler {
  const expected = apiKeys.map(digest);
  return (req, res, next) => {
    const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    const presented = digest(match?.[1] ?? '');
    let found = -1;
    expected.forEach((key, index) => {
      if (timingSafeEqual(key, presented)) found = index;
    });
    if (!match || found < 0) throw errors.unauthorized();
    res.locals.apiKeyName = `key-${found + 1}`;
    next();
  };
}
