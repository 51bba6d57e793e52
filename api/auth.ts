import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { API_ROLES, type ApiKey, type ApiRole } from '../config/env';
import { errors } from './errors';

// Keys are compared as SHA-256 digests: equal lengths for timingSafeEqual, and no early exit
// that would reveal a key's length or prefix.
const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Checks the Bearer key against every configured key (all of them, whichever matches) and
 * records which one it was: `res.locals.apiKeyName` (the configured name, or `key-N` for a bare
 * key) and `res.locals.apiKeyRole`, never the key itself.
 */
export function requireApiKey(apiKeys: readonly ApiKey[]): RequestHandler {
  const expected = apiKeys.map((key) => ({ key, digest: digest(key.secret) }));
  return (req, res, next) => {
    const match = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    const presented = digest(match?.[1] ?? '');
    let found: ApiKey | null = null;
    for (const candidate of expected) {
      if (timingSafeEqual(candidate.digest, presented)) found = candidate.key;
    }
    if (!match || !found) throw errors.unauthorized();
    res.locals.apiKeyName = found.name;
    res.locals.apiKeyRole = found.role;
    next();
  };
}

const rank = (role: ApiRole) => API_ROLES.indexOf(role);

/**
 * Lets the request through when the key's role is `role` or above (read < write < admin);
 * 403 `insufficient_role` otherwise. Mounted on each route, so the route says what it needs.
 */
export function requireRole(role: ApiRole): RequestHandler {
  return (_req, res, next) => {
    const has = res.locals.apiKeyRole as ApiRole | undefined;
    if (has === undefined) throw errors.unauthorized();
    if (rank(has) < rank(role)) throw errors.insufficientRole(role, has);
    next();
  };
}
