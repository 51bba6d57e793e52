import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { errors } from './errors';

// Keys are compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit
// that would reveal a key's length or prefix.
const digest = (value: string) => createHash('sha256').update(value).digest();

export function requireApiKey(apiKeys: readonly string[]): RequestHandler {
  const expected = apiKeys.map(digest);
  return (req, _res, next) => {
    const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    const presented = digest(match?.[1] ?? '');
    let valid = false;
    for (const key of expected) valid = timingSafeEqual(key, presented) || valid;
    if (!match || !valid) throw errors.unauthorized();
    next();
  };
}
