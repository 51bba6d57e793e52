import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

// What does I/O: the SDKs of the services the worker and the API talk to, and the folders that use them.
const SERVICE_PACKAGES = [
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  '@temporalio/testing',
  'stripe',
  'postgres',
  'pg',
  'nodemailer',
  'pino',
  'express',
  'prom-client',
];
const SERVICE_FOLDERS = [
  'activities',
  'api',
  'cli',
  'config',
  'credits',
  'db',
  'email',
  'scripts',
  'stripe',
  'temporal',
  'worker',
];

/**
 * Bans, in `files`, Node's built-ins and value imports of the I/O SDKs and folders. With `room`
 * (the files are one room's workflows), any import of activities but that room's own: a workflow
 * proxies `ReturnType<typeof createXActivities>` of `activities/<room>/`, never the union the
 * worker registers (`activities/index.ts`) nor another room's.
 * @param {string[]} files
 * @param {string} up the relative path from those files to the top of the project
 * @param {string} [room]
 */
function deterministic(files, up, room) {
  const message = 'Workflows and the rules they import are deterministic: types only.';
  const ownOnly = `A workflow proxies only its own room's activities: ReturnType<typeof createXActivities> from activities/${room}/.`;
  // `activities` itself is a path of its own: as a pattern it would shut its subfolders, the room's too.
  const ownActivities = room
    ? {
        paths: [{ name: `${up}activities`, message: ownOnly }],
        patterns: [
          {
            group: [`${up}activities/**`, `!${up}activities/${room}`, `!${up}activities/${room}/**`],
            message: ownOnly,
          },
        ],
      }
    : { paths: [], patterns: [] };
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...builtinModules.flatMap((name) => [name, `node:${name}`]),
            ...SERVICE_PACKAGES.map((name) => ({ name, allowTypeImports: true, message })),
            ...ownActivities.paths,
          ],
          patterns: [
            {
              group: SERVICE_FOLDERS.flatMap((folder) => [`${up}${folder}`, `${up}${folder}/**`]),
              allowTypeImports: true,
              message,
            },
            ...ownActivities.patterns,
          ],
        },
      ],
    },
  };
}

/** The rooms of workflows/, each linted against the activities of the others. */
const WORKFLOW_ROOMS = readdirSync(path.join(import.meta.dirname, 'workflows'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

/**
 * `no-restricted-imports` in `files`, by patterns of import paths.
 * @param {string[]} files
 * @param {{ regex: string, message: string }[]} patterns
 */
function restrictImports(files, patterns) {
  return { files, rules: { 'no-restricted-imports': ['error', { patterns }] } };
}

const ENGINE_FROM_ITS_INDEX = {
  regex: '^(\\.\\./)+credits/(?!index$)',
  message: "The credit engine is used through its public functions: import from 'credits/index'.",
};

export default tseslint.config(
  {
    // Besides what is built or installed: the CommonJS Jest loads as it is (its configuration, and
    // the log reporter's shim, which loads the reporter's TypeScript through tsx).
    ignores: [
      'dist/',
      'node_modules/',
      '.data/',
      '.tools/',
      'coverage/',
      'jest.config.js',
      'test/setup/log-reporter.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // A promise nobody awaits is a write nobody checks.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Workflow code is replayed: no I/O, clocks or randomness of Node's own, and no client SDK.
  // domain/ holds the pure rules workflows import, so the same ban applies there.
  deterministic(['workflows/*.ts', 'domain/*.ts'], '../'),
  ...WORKFLOW_ROOMS.map((room) => deterministic([`workflows/${room}/*.ts`], '../../', room)),
  // The credit engine imports only the database client (and the outbound-event row writer, part of
  // the database layer) and pure rules: what a movement causes is written as rows (follow-ups),
  // never done by calling a workflow, a mailer or Stripe. Types included.
  restrictImports(
    ['credits/**/*.ts'],
    [
      {
        regex: '^\\.\\./(?!db/client$|db/outbound-webhooks/events$|domain/)',
        message: 'The credit engine imports only db/client, db/outbound-webhooks/events and domain/.',
      },
      {
        regex: '^(?!\\.|node:)',
        message: 'The credit engine uses no SDK of its own: the database client is db/client.',
      },
    ],
  ),
  // Outside the credit engine, its public functions (credits/index.ts) are the only way in; the
  // stores define the records they read and write, and workflow contracts name them from there.
  restrictImports(
    [
      'activities/**/*.ts',
      'api/**/*.ts',
      'cli/**/*.ts',
      'scripts/**/*.ts',
      'stripe/**/*.ts',
      'temporal/**/*.ts',
      'worker/**/*.ts',
      'config/**/*.ts',
      'email/**/*.ts',
    ],
    [ENGINE_FROM_ITS_INDEX],
  ),
  restrictImports(
    ['db/**/*.ts'],
    [
      ENGINE_FROM_ITS_INDEX,
      {
        regex: '^(\\.\\./)+workflows(/|$)',
        message: 'A store does not depend on workflows: define the type here (or in domain/).',
      },
    ],
  ),
  // The typed client is what a customer's code would hold: it knows the service only through the
  // OpenAPI document it was generated from (client/schema.ts), never through the server's modules.
  restrictImports(
    ['client/index.ts', 'client/schema.ts'],
    [{ regex: '^\\.\\./', message: 'The client imports only openapi-fetch and its generated schema.' }],
  ),
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
