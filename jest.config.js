/**
 * Two tiers. `fast` (`*.fast.test.ts`, `npm run test:fast`): pure rules, workflow logic against
 * stub activities on Temporal's time-skipping test server, Stripe's request shapes against
 * stripe-mock; no PostgreSQL, no Temporal dev server. `integration`: everything else, against real PostgreSQL, Temporal and SMTP servers that
 * the global setup starts. `npm test` runs both.
 */
const shared = {
  // Node's, with a log file per test file: what a passing test logs stays out of the terminal.
  testEnvironment: '<rootDir>/test/setup/test-environment.ts',
  roots: ['<rootDir>/test'],
  // Type checking is `npm run typecheck`; here TypeScript is only transpiled, which is much faster.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
};

module.exports = {
  testTimeout: 120_000,
  // After Jest's own: a failing test's log, and where this run's logs are (test/setup/test-logs.ts).
  reporters: ['default', '<rootDir>/test/setup/log-reporter.js'],
  // Each integration file runs its own worker against the shared servers; two cores, two files at once.
  maxWorkers: 2,
  projects: [
    {
      ...shared,
      displayName: 'fast',
      testMatch: ['**/*.fast.test.ts'],
      // The workflow code, bundled once for the files that run it on the time-skipping server.
      globalSetup: '<rootDir>/test/setup/fast-setup.ts',
      globalTeardown: '<rootDir>/test/setup/fast-teardown.ts',
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['\\.fast\\.test\\.ts$'],
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
    },
  ],
};
