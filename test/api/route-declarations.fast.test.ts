import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { createOpenApiDocument, openApiPath } from '../../api/http/openapi';
import { API_ROUTES, DOCUMENTED_ROUTES } from '../../api/routes/index';

const API_FOLDER = join(__dirname, '../../api');

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const sources = sourceFiles(API_FOLDER).map((file) => ({
  file: relative(API_FOLDER, file),
  text: readFileSync(file, 'utf8'),
}));

const occurrences = (text: string, literal: string) => text.split(literal).length - 1;

describe('route declarations', () => {
  it('when the routes are declared, then each method and path is declared once', () => {
    const names = DOCUMENTED_ROUTES.map((route) => `${route.method.toUpperCase()} ${route.path}`);
    expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
    expect(API_ROUTES.length).toBeGreaterThanOrEqual(30);
  });

  it('when the API source is read, then each route path is written in one place only: its declaration', () => {
    const misplaced: string[] = [];
    for (const path of new Set(API_ROUTES.map((route) => route.path))) {
      const declared = API_ROUTES.filter((route) => route.path === path).length;
      for (const form of [path, openApiPath(path)]) {
        const found = sources.flatMap(({ file, text }) => {
          const count = occurrences(text, `'${form}'`);
          return count > 0 ? [`${file} (${count})`] : [];
        });
        const total = sources.reduce((sum, { text }) => sum + occurrences(text, `'${form}'`), 0);
        if (total !== (form === path ? declared : 0)) misplaced.push(`${form}: ${found.join(', ')}`);
      }
    }
    expect(misplaced).toEqual([]);
  });

  it('when the OpenAPI builder and the Express mount are read, then they name no /v1 path: routes are written in their declarations only', () => {
    for (const file of ['http/openapi.ts', 'http/express.ts', 'http/route.ts']) {
      const text = readFileSync(join(API_FOLDER, file), 'utf8');
      expect({ file, v1: text.includes('/v1') }).toEqual({ file, v1: false });
    }
  });

  it("when a route's path has parameters, then its params schema validates exactly those", () => {
    const mismatches = DOCUMENTED_ROUTES.flatMap((route) => {
      const inPath = [...route.path.matchAll(/:(\w+)/g)].map((match) => match[1]).sort();
      const validated = Object.keys(route.params?.shape ?? {}).sort();
      return JSON.stringify(inPath) === JSON.stringify(validated)
        ? []
        : [`${route.method} ${route.path}: ${validated.join(', ')}`];
    });
    expect(mismatches).toEqual([]);
  });

  it('when the document is built, then every route behind a key documents its 401 and its role, and above read its 403', () => {
    const document = createOpenApiDocument('http://localhost', DOCUMENTED_ROUTES) as any;
    for (const route of API_ROUTES) {
      const operation = document.paths[openApiPath(route.path)][route.method];
      expect({ route: route.path, role: operation['x-required-role'] }).toEqual({
        route: route.path,
        role: route.role,
      });
      expect(operation.description).toContain(`Needs an API key with the \`${route.role}\` role`);
      expect(Object.keys(operation.responses)).toEqual(
        expect.arrayContaining(route.role === 'read' ? ['401'] : ['401', '403']),
      );
      if (route.role === 'read') expect(operation.responses['403']).toBeUndefined();
    }
  });

  it('when a route takes an idempotency key (body or Idempotency-Key header), then it declares its replays and the document shows Idempotent-Replayed on its success answers', () => {
    const document = createOpenApiDocument('http://localhost', DOCUMENTED_ROUTES) as any;
    const keyed = API_ROUTES.filter((route) => {
      const body = route.body instanceof z.ZodObject ? (route.body.shape as Record<string, unknown>) : {};
      return 'idempotencyKey' in body || 'idempotency-key' in (route.headers?.shape ?? {});
    });
    expect(keyed.map((route) => `${route.method} ${route.path}`).sort()).toEqual(
      [
        'post /v1/accounts/:id/debits',
        'post /v1/accounts/:id/grants',
        'post /v1/accounts/:id/reservations',
        'post /v1/checkout/sessions',
      ].sort(),
    );
    const replaying = API_ROUTES.filter((route) => route.replays !== undefined);
    expect(replaying).toEqual(expect.arrayContaining(keyed));
    for (const route of API_ROUTES) {
      const answers = document.paths[openApiPath(route.path)][route.method].responses;
      for (const [status, answer] of Object.entries<any>(answers)) {
        const documented = answer.headers?.['Idempotent-Replayed'];
        const expected = route.replays !== undefined && status.startsWith('2');
        expect({ route: `${route.method} ${route.path} ${status}`, documented: Boolean(documented) }).toEqual(
          {
            route: `${route.method} ${route.path} ${status}`,
            documented: expected,
          },
        );
        if (expected) {
          expect(documented.schema).toMatchObject({ const: 'true' });
          expect(documented.description).toContain('Absent on the first answer');
        }
      }
      // A replay answers as the first answer did: one success status, never 200-or-201.
      if (route.replays !== undefined) {
        expect(Object.keys(answers).filter((status) => status.startsWith('2'))).toHaveLength(1);
      }
    }
  });
});
