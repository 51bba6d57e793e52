import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

/**
 * A typed client of the credits billing API: openapi-fetch over the types openapi-typescript
 * generated from the service's own OpenAPI document (client/schema.ts, `npm run
 * client:generate`). Every route behind an API key (everything under /v1) is a typed call:
 * its path parameters, query, headers and body are checked by the compiler, and so is what it
 * answers, success and error alike.
 *
 *   const credits = createCreditsClient({ baseUrl: 'https://billing.example.com', apiKey });
 *   const { data, error } = await credits.POST('/v1/accounts/{id}/debits', {
 *     params: { path: { id: 'acct_42' } },
 *     body: { amount: 5, reason: 'export', idempotencyKey: 'export-981' },
 *   });
 *   if (error) console.log(error.error.code); // 'insufficient_credits' | 'account_not_found' | …
 *
 * It knows the service only through that document: nothing here imports the server's code.
 */

/** The operations behind an API key: every path of the document under /v1. */
export type CreditsPaths = { [P in keyof paths as P extends `/v1/${string}` ? P : never]: paths[P] };

/** The document's named schemas (`Schemas['Debit']`, `Schemas['CreateCheckoutSession']`, …). */
export type Schemas = components['schemas'];

/** The body of every error answer: `{"error": {"code", "message", "details"?}}`. */
export type ErrorBody = Schemas['Error'];

/** The service's closed list of stable error codes. */
export type ErrorCode = ErrorBody['error']['code'];

export type CreditsClient = Client<CreditsPaths>;

export interface CreditsClientOptions {
  /** Where the API is served, without `/v1` (`http://localhost:3000`). */
  baseUrl: string;
  /** A key of the service's BILLING_API_KEYS; its role decides which routes answer. */
  apiKey: string;
  /** Another fetch (a test's, a proxy's); the global one otherwise. */
  fetch?: (request: Request) => Promise<Response>;
}

export function createCreditsClient({ baseUrl, apiKey, fetch }: CreditsClientOptions): CreditsClient {
  return createClient<CreditsPaths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
    ...(fetch ? { fetch } : {}),
  });
}

/** An error answer of the service, with its stable code. */
export class CreditsApiError extends Error {
  override readonly name = 'CreditsApiError';

  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

const isErrorBody = (body: unknown): body is ErrorBody =>
  typeof (body as ErrorBody | undefined)?.error?.code === 'string' &&
  typeof (body as ErrorBody).error.message === 'string';

/** What a call of the client resolves to (openapi-fetch's `FetchResponse`, either side). */
type Answer = { data?: unknown; error?: unknown; response: Response };

/** The data of an answer's success side (`undefined` only where the success has no body). */
type DataOf<A extends Answer> = Extract<A, { error?: never }>['data'];

/**
 * The data of a successful answer (`undefined` for a 204), or a thrown `CreditsApiError` with
 * the code the service answered. An error answer that is not the service's error body (from
 * something between the client and the service) throws a plain `Error` with its status.
 *
 *   const debit = await ok(credits.POST('/v1/accounts/{id}/debits', { … }));
 */
export async function ok<A extends Answer>(answer: A | Promise<A>): Promise<DataOf<A>> {
  const { data, error, response } = await answer;
  if (response.ok) return data;
  if (isErrorBody(error)) {
    throw new CreditsApiError(response.status, error.error.code, error.error.message, error.error.details);
  }
  throw new Error(`${response.status} ${response.statusText} from ${response.url}`);
}
