/** Tests run against real PostgreSQL, Temporal and SMTP servers that the global setup starts. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Type checking is `npm run typecheck`; here TypeScript is only transpiled, which is much faster.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  testTimeout: 120_000,
  // Each test file runs its own worker against the shared servers; two cores, two files at once.
  maxWorkers: 2,
};
