import type { z } from 'zod';
import {
  createDocument,
  type ZodOpenApiOperationObject,
  type ZodOpenApiParameters,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import { errorResponse } from './common-schemas';
import { replayedHeaders } from './replays';
import type { DocumentedRoute, OperationDescription, Route } from './route';

/**
 * The OpenAPI 3.1 document, built from the same declarations the app serves: each route's
 * schemas, answers and error codes; for a route behind an API key, its 401, its role
 * (`x-required-role`, a sentence in the description) and, above read, its 403.
 */

const json = (schema: z.ZodType) => ({ content: { 'application/json': { schema } } });

/** Express's `/accounts/:id` → OpenAPI's `/accounts/{id}`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

function responses(
  { responses: answers, errors }: OperationDescription,
  replays?: string,
): ZodOpenApiResponsesObject {
  // A route that replays says so on each success answer, with the header a replay carries.
  const headers = replays === undefined ? {} : { headers: replayedHeaders(replays) };
  return {
    ...Object.fromEntries(
      Object.entries(answers).map(([status, answer]) => [
        status,
        {
          ...(typeof answer === 'string'
            ? { description: answer }
            : { description: answer[0], ...json(answer[1]) }),
          ...(status.startsWith('2') ? headers : {}),
        },
      ]),
    ),
    ...Object.fromEntries(
      Object.entries(errors).map(([status, description]) => [
        status,
        { description, ...json(errorResponse) },
      ]),
    ),
  };
}

/** Required unless the route takes a request without one (its schema accepts no body at all). */
const requestBody = (schema: z.ZodType) => ({
  required: !schema.safeParse(undefined).success,
  ...json(schema),
});

function describe(operation: OperationDescription, replays?: string): ZodOpenApiOperationObject {
  const requestParams: ZodOpenApiParameters = {
    ...(operation.params ? { path: operation.params } : {}),
    ...(operation.query ? { query: operation.query } : {}),
    ...(operation.headers ? { header: operation.headers } : {}),
  };
  return {
    summary: operation.summary,
    ...(operation.description ? { description: operation.description } : {}),
    ...(Object.keys(requestParams).length > 0 ? { requestParams } : {}),
    ...(operation.body ? { requestBody: requestBody(operation.body) } : {}),
    responses: responses(operation, replays),
  };
}

/** A route behind an API key: the key's 401, and the role it needs. */
function describeRoute(route: Route): ZodOpenApiOperationObject {
  const operation = describe(
    { ...route, errors: { ...route.errors, 401: 'Missing or invalid API key (`unauthorized`).' } },
    route.replays,
  );
  const needs = `Needs an API key with the \`${route.role}\` role (or above).`;
  return {
    ...operation,
    'x-required-role': route.role,
    description: operation.description ? `${operation.description}\n\n${needs}` : needs,
    responses:
      route.role === 'read'
        ? operation.responses
        : {
            ...operation.responses,
            '403': {
              description: `The key's role is below \`${route.role}\` (\`insufficient_role\`).`,
              ...json(errorResponse),
            },
          },
  };
}

export function createOpenApiDocument(serverUrl: string, operations: readonly (Route | DocumentedRoute)[]) {
  const paths: Record<string, Record<string, ZodOpenApiOperationObject>> = {};
  for (const operation of operations) {
    const methods = (paths[openApiPath(operation.path)] ??= {});
    if (methods[operation.method])
      throw new Error(`${operation.method} ${operation.path} is described twice`);
    methods[operation.method] =
      'role' in operation
        ? describeRoute(operation)
        : { ...describe(operation), security: operation.security };
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Credits billing API',
      version: '1.0.0',
      description:
        'Prepaid credits sold through Stripe, granted exactly once. Errors: `{"error": {"code", "message"}}`. ' +
        'On every route, a request that cannot be read changes nothing: a body that is not what its ' +
        'Content-Encoding says answers 400 `malformed_body`, a Content-Encoding other than gzip, deflate or br ' +
        '415 `unsupported_content_encoding`, a path that is not valid percent-encoded UTF-8 400 `malformed_path`.',
    },
    servers: [{ url: serverUrl }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: {
        codecToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A token from TEMPORAL_CODEC_TOKEN (the codec server only; an admin API key works too).',
        },
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A key from BILLING_API_KEYS; its role (read, write, admin) decides which routes it may call.',
        },
      },
    },
    paths,
  });
}
