import type { Payload } from '@temporalio/common';
import express, { Router, type RequestHandler } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ApiConfig } from '../config/env';
import { EncryptionCodec } from '../config/payload-codec';
import { errors, parseOrThrow } from './errors';
import type { DocumentedRoute } from './http/route';

/**
 * Temporal's remote codec protocol, so that the Temporal UI and CLI show payloads decrypted:
 * `POST /codec/decode` and `POST /codec/encode` take and answer `{"payloads": [...]}`, each payload
 * in protobuf JSON form (metadata values and data base64), for the namespace named by the
 * `X-Namespace` header. The same codec and key ring as the service's clients and workers.
 *
 * Who may call it:
 * - `Authorization: Bearer <token>` with a TEMPORAL_CODEC_TOKEN or an API key of the admin role:
 *   the CLI (`--codec-auth`), scripts, a proxy in front of the UI.
 * - The token as a path segment, `/codec/<token>/decode`: for the Temporal UI, which cannot send
 *   a header of its own (its only Authorization is its users' OIDC token, and only over HTTPS).
 *   Anyone who can read the UI's settings holds this token: it gives the UI's users, and nobody
 *   who can only read Temporal's database, what the UI shows.
 * - From a browser, only from a TEMPORAL_UI_ORIGIN origin (CORS, with credentials allowed, so
 *   that a UI configured to include cross-origin credentials works behind a cookie-based login).
 */

// The UI sends whole batches of a history's payloads; each payload may be up to Temporal's 2 MB.
const BODY_LIMIT = '8mb';
const MAX_PAYLOADS = 10_000;
const OPERATIONS = new Set(['encode', 'decode']);
const ALLOWED_HEADERS = 'authorization, content-type, x-namespace';

// Protobuf JSON bytes: standard or URL-safe base64, padding optional.
const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'base64');
const jsonPayload = z
  .object({
    metadata: z
      .record(z.string(), base64)
      .nullish()
      .meta({ description: 'Each value base64.', example: { encoding: 'anNvbi9wbGFpbg==' } }),
    data: base64.nullish().meta({ description: 'base64.', example: 'eyJhIjoxfQ==' }),
  })
  .meta({ id: 'CodecPayload', description: 'A Temporal Payload in protobuf JSON form.' });
/** The body of both operations, and of their answers. */
export const codecPayloads = z
  .object({ payloads: z.array(jsonPayload).max(MAX_PAYLOADS).default([]) }) // proto3 JSON omits an empty list
  .meta({ id: 'CodecPayloads' });
type JsonPayload = z.infer<typeof jsonPayload>;

/** The two operations as the OpenAPI document shows them (served as `/codec/:operation` below). */
export const codecRoutes = (['decode', 'encode'] as const).map((operation): DocumentedRoute => ({
  method: 'post',
  path: `/codec/${operation}`,
  summary:
    operation === 'decode'
      ? "Decrypt payloads from Temporal's history (Temporal's remote codec protocol)"
      : 'Encrypt payloads as the service does (Temporal remote codec protocol)',
  description:
    'For the Temporal UI and CLI, with the key ring of the clients and workers. Also served as ' +
    `\`/codec/{token}/${operation}\`, the token in the path, for the Temporal UI, which sends no header of ` +
    'its own. `X-Namespace`, when sent, must be the namespace the service uses. From a browser, only ' +
    'from a `TEMPORAL_UI_ORIGIN` origin (CORS preflight answered for those origins only).',
  security: [{ codecToken: [] }, { apiKey: [] }],
  headers: z.object({
    'x-namespace': z.string().optional().meta({ description: 'The Temporal namespace.', example: 'default' }),
  }),
  body: codecPayloads,
  responses: { 200: [`The payloads, ${operation}d, in the same order.`, codecPayloads] },
  errors: {
    400: `A payload that cannot be ${operation}d (\`invalid_payload\`), or a malformed body (\`malformed_json\`, \`malformed_body\`).`,
    401: 'Missing or invalid codec token or admin API key (`unauthorized`).',
    403: 'A browser origin other than TEMPORAL_UI_ORIGIN (`origin_not_allowed`), or another namespace (`namespace_not_served`).',
    404: 'No codec token and no admin API key is configured (`codec_not_configured`).',
    413: 'Body over 8 MB (`payload_too_large`).',
    415: 'A Content-Encoding other than gzip, deflate or br (`unsupported_content_encoding`).',
  },
}));

export function payloadFromJson(json: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(json.metadata ?? {}).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
    ),
    ...(json.data ? { data: Buffer.from(json.data, 'base64') } : {}),
  };
}

export function payloadToJson(payload: Payload): { metadata: Record<string, string>; data?: string } {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([name, value]) => [
        name,
        Buffer.from(value).toString('base64'),
      ]),
    ),
    ...(payload.data && payload.data.length > 0
      ? { data: Buffer.from(payload.data).toString('base64') }
      : {}),
  };
}

// Compared as SHA-256 digests: equal lengths for timingSafeEqual, every candidate checked.
const digest = (value: string) => createHash('sha256').update(value).digest();
function matchesAny(candidates: readonly Buffer[], presented: string): boolean {
  const value = digest(presented);
  let found = false;
  for (const candidate of candidates) if (timingSafeEqual(candidate, value)) found = true;
  return found;
}

/** CORS for the Temporal UI's origins only; any other browser origin is refused outright. */
function cors(uiOrigins: readonly string[]): RequestHandler {
  const allowed = new Set(uiOrigins);
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.get('origin');
    if (origin === undefined) {
      // Not a browser's cross-origin request: the CLI, curl, a server.
      if (req.method === 'OPTIONS') {
        res.set('allow', 'POST, OPTIONS').status(204).end();
        return;
      }
      next();
      return;
    }
    if (!allowed.has(origin)) throw errors.originNotAllowed(origin);
    res.set('access-control-allow-origin', origin);
    res.set('access-control-allow-credentials', 'true');
    if (req.method === 'OPTIONS') {
      res.set('access-control-allow-methods', 'POST, OPTIONS');
      res.set('access-control-allow-headers', ALLOWED_HEADERS);
      res.set('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

export function codecRouter({ config }: { config: ApiConfig }): Router {
  const codec = new EncryptionCodec(config.temporalPayloads.keyRing, config.temporalPayloads.encrypt);
  const codecTokens = config.codec.tokens.map(digest);
  const adminKeys = config.apiKeys.filter((key) => key.role === 'admin').map((key) => digest(key.secret));
  const namespace = config.temporal.namespace;

  const authenticate: RequestHandler = (req, _res, next) => {
    if (!OPERATIONS.has(String(req.params.operation))) throw errors.routeNotFound();
    if (codecTokens.length === 0 && adminKeys.length === 0) throw errors.codecNotConfigured();
    const pathToken = req.params.token;
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    // With a token in the path, an Authorization header is the UI's own (its users' OIDC token).
    const valid =
      typeof pathToken === 'string'
        ? matchesAny(codecTokens, pathToken)
        : bearer !== undefined && (matchesAny(codecTokens, bearer) || matchesAny(adminKeys, bearer));
    if (!valid) throw errors.codecUnauthorized();
    const asked = req.get('x-namespace');
    if (asked !== undefined && asked !== namespace) throw errors.namespaceNotServed(asked, namespace);
    next();
  };

  const convert: RequestHandler = async (req, res) => {
    const operation = req.params.operation as 'encode' | 'decode';
    const { payloads } = parseOrThrow(codecPayloads, req.body);
    const converted: Payload[] = [];
    // One at a time, so that a failure names the payload.
    for (const [index, json] of payloads.entries()) {
      try {
        const [payload] = await codec[operation]([payloadFromJson(json)]);
        if (payload) converted.push(payload);
      } catch (error) {
        throw errors.invalidPayload(index, operation, error instanceof Error ? error.message : String(error));
      }
    }
    res.set('cache-control', 'no-store');
    res.json({ payloads: converted.map(payloadToJson) });
  };

  const router = Router();
  router.use('/codec', cors(config.codec.uiOrigins));
  const json = express.json({ limit: BODY_LIMIT, strict: true });
  for (const path of ['/codec/:operation', '/codec/:token/:operation']) {
    router.post(path, authenticate, json, convert);
  }
  return router;
}
