import type { z } from 'zod';
import type { ApiRole } from '../../config/env';
import type { AppDependencies } from '../dependencies';
import { parseOrThrow } from '../errors';

/**
 * One HTTP operation, declared once: its path, role, schemas and handler. `mountRoutes`
 * (api/http/express.ts) serves a list of them and `createOpenApiDocument` (api/http/openapi.ts)
 * describes the same list, so the document, the role check and the validation cannot disagree.
 */

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A documented answer: its description, and its JSON body's schema when it has a body. */
export type ResponseSpec = readonly [description: string, schema: z.ZodType] | string;
export type Responses = Readonly<Record<number, ResponseSpec>>;

/** What the OpenAPI document says of an operation. */
export interface OperationDescription {
  method: HttpMethod;
  /** Express-style, `/accounts/:id`; the document writes it `/accounts/{id}`. */
  path: string;
  summary: string;
  description?: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  headers?: z.ZodObject;
  body?: z.ZodType;
  responses: Responses;
  /** Each error status with the stable codes it answers (the body is always an `Error`). */
  errors: Readonly<Record<number, string>>;
}

/**
 * A route served by a module of its own (the Stripe webhook, the probes, the codec server),
 * because it reads its body or checks its caller its own way; described here for the document.
 */
export interface DocumentedRoute extends OperationDescription {
  /** OpenAPI security requirements: `[]` when no key is needed. */
  security: Array<Record<string, string[]>>;
}

/** The API key that called: its configured name (never the secret) and its role. */
export interface Caller {
  name: string;
  role: ApiRole;
}

/** The parts of a request a route reads, before parsing. */
export interface RawRequest {
  params: unknown;
  query: unknown;
  body: unknown;
  header(name: string): string | undefined;
}

export interface RouteResult {
  status: number;
  /** Sent as JSON; none for a 204. */
  body?: unknown;
  /** This answer repeats the first answer to the same request: sent with `Idempotent-Replayed: true`. */
  replayed?: boolean;
}

/** A route behind an API key: mounted by `mountRoutes`, described by `createOpenApiDocument`. */
export interface Route extends OperationDescription {
  /** The lowest role that may call it (read < write < admin); below it, 403 `insufficient_role`. */
  role: ApiRole;
  /**
   * For a route that answers a repeated request as it answered the first time: what makes a
   * request a repeat (`the same idempotencyKey`). Its success answers document the
   * `Idempotent-Replayed` header; only such a route may answer `replayed`.
   */
  replays?: string;
  /** A JSON body up to this size instead of the API's small default (a batch of events). */
  bodyLimitBytes?: number;
  /** Parses params, query, body and headers (400 `invalid_request`), then runs the handler. */
  serve(request: RawRequest, caller: Caller, deps: AppDependencies): Promise<RouteResult>;
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteInput<P, Q, B, H> {
  params: Parsed<P>;
  query: Parsed<Q>;
  body: Parsed<B>;
  headers: Parsed<H>;
  caller: Caller;
  deps: AppDependencies;
}

export interface RouteSpec<P, Q, B, H, S extends number> extends Omit<
  OperationDescription,
  'params' | 'query' | 'body' | 'headers' | 'responses'
> {
  role: ApiRole;
  replays?: string;
  bodyLimitBytes?: number;
  params?: P;
  query?: Q;
  body?: B;
  headers?: H;
  responses: { readonly [status in S]: ResponseSpec };
  /**
   * Gets the parsed request; answers one of the declared statuses (the compiler checks it) or
   * throws a `BillingError`. The body is not checked against its schema by the compiler: it
   * would widen the literals of a body written in place (`deleted: true`) and refuse them.
   */
  handler: (
    input: RouteInput<P, Q, B, H>,
  ) => Promise<{ status: NoInfer<S>; body?: unknown; replayed?: boolean }>;
}

const parsePart = (schema: z.ZodType | undefined, value: () => unknown): unknown =>
  schema === undefined ? undefined : parseOrThrow(schema, value());

export function defineRoute<
  P extends z.ZodObject | undefined = undefined,
  Q extends z.ZodObject | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
  H extends z.ZodObject | undefined = undefined,
  S extends number = number,
>(spec: RouteSpec<P, Q, B, H, S>): Route {
  const { handler, params, query, body, headers, ...description } = spec;
  return {
    ...description,
    ...(params ? { params } : {}),
    ...(query ? { query } : {}),
    ...(body ? { body } : {}),
    ...(headers ? { headers } : {}),
    async serve(request, caller, deps) {
      // In this order, so that a request wrong in several parts is told about the first.
      const parsed = {
        params: parsePart(params, () => request.params),
        query: parsePart(query, () => request.query),
        body: parsePart(body, () => request.body),
        headers: parsePart(headers, () =>
          Object.fromEntries(Object.keys(headers?.shape ?? {}).map((name) => [name, request.header(name)])),
        ),
      } as Pick<RouteInput<P, Q, B, H>, 'params' | 'query' | 'body' | 'headers'>;
      const result = await handler({ ...parsed, caller, deps });
      if (result.replayed && description.replays === undefined) {
        throw new Error(
          `${description.method} ${description.path} answered a replay but declares no replays`,
        );
      }
      return result;
    },
  };
}
