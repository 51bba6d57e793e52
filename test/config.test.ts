import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { CONFIG_VARIABLES, ConfigError, loadApiConfig, loadWorkerConfig } from '../config/env';

const valid = {
  NODE_ENV: 'development',
  DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/credits',
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  STRIPE_WEBHOOK_SECRET: 'whsec_one,whsec_two',
  BILLING_API_KEYS: 'key_aaaaaaaaaaaaaaaa, key_bbbbbbbbbbbbbbbb',
  SMTP_URL: 'smtp://127.0.0.1:1025',
};

function issuesOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('configuration was accepted');
}

describe('configuration', () => {
  it('when the environment is complete, then lists are split and defaults applied', () => {
    const config = loadApiConfig(valid);
    expect(config.webhookSecrets).toEqual(['whsec_one', 'whsec_two']);
    expect(config.apiKeys).toEqual(['key_aaaaaaaaaaaaaaaa', 'key_bbbbbbbbbbbbbbbb']);
    expect(config.port).toBe(3000);
    expect(config.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'credits-billing',
    });
    expect(config.stripe.livemode).toBe(false);
  });

  it('when .env.example is read, then it documents exactly the variables the processes read, with valid values', () => {
    const example = parseEnv(readFileSync(path.join(__dirname, '..', '.env.example'), 'utf8'));
    const documented = Object.keys(example).filter((name) => !name.startsWith('DEV_'));
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
    const filledIn = { ...example, ...valid };
    expect(() => loadApiConfig(filledIn)).not.toThrow();
    expect(() => loadWorkerConfig(filledIn)).not.toThrow();
  });

  it('when values are missing or malformed, then every bad variable is named', () => {
    const issues = issuesOf(() =>
      loadApiConfig({
        ...valid,
        DATABASE_URL: 'mysql://x',
        TEMPORAL_ADDRESS: 'nope',
        PORT: 'eighty',
        STRIPE_WEBHOOK_SECRET: 'secret',
      }),
    );
    expect(issues.map((issue) => issue.split(':')[0])).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'TEMPORAL_ADDRESS', 'PORT', 'STRIPE_WEBHOOK_SECRET.0']),
    );
    expect(issuesOf(() => loadWorkerConfig({ ...valid, SMTP_URL: undefined }))[0]).toMatch(/^SMTP_URL/);
  });

  it('when production runs with a test-mode key, no webhook secret and no API key, then it refuses all three', () => {
    const issues = issuesOf(() =>
      loadApiConfig({
        ...valid,
        NODE_ENV: 'production',
        STRIPE_SECRET_KEY: 'sk_test_abc123',
        STRIPE_WEBHOOK_SECRET: '',
        BILLING_API_KEYS: ' , ',
      }),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^STRIPE_SECRET_KEY: production needs a live-mode key/),
        'STRIPE_WEBHOOK_SECRET: required in production',
        'BILLING_API_KEYS: required in production',
      ]),
    );
    expect(issuesOf(() => loadWorkerConfig({ ...valid, NODE_ENV: 'production' }))).toEqual([
      expect.stringMatching(/^STRIPE_SECRET_KEY/),
    ]);
  });

  it('when production has a live key, then livemode is on', () => {
    const config = loadApiConfig({ ...valid, NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc123' });
    expect(config.stripe.livemode).toBe(true);
  });

  it('when an API key is too short, then it is refused', () => {
    expect(issuesOf(() => loadApiConfig({ ...valid, BILLING_API_KEYS: 'short' }))).toEqual([
      expect.stringMatching(/^BILLING_API_KEYS.0: each API key has at least 16 characters/),
    ]);
  });

  it('when the API process starts with bad configuration, then it exits 78 with what to fix and no secret', () => {
    const result = spawnSync(path.join('node_modules', '.bin', 'tsx'), ['api/main.ts'], {
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        DATABASE_URL: valid.DATABASE_URL,
        TEMPORAL_ADDRESS: valid.TEMPORAL_ADDRESS,
        STRIPE_SECRET_KEY: 'sk_test_supersecretvalue',
        BILLING_API_KEYS: 'an_api_key_that_is_secret',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('STRIPE_SECRET_KEY: production needs a live-mode key');
    expect(result.stderr).toContain('STRIPE_WEBHOOK_SECRET: required in production');
    expect(result.stderr).not.toContain('supersecretvalue');
    expect(result.stderr).not.toContain('an_api_key_that_is_secret');
  });
});
