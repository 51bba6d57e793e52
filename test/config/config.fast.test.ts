import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inspect, parseEnv } from 'node:util';
import {
  CONFIG_VARIABLES,
  ConfigError,
  DEVELOPMENT_PAYLOAD_KEYS,
  loadApiConfig,
  loadWorkerConfig,
  parseApiKeys,
} from '../../config/env';

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
    expect(config.apiKeys).toEqual([
      { name: 'key-1', role: 'write', secret: 'key_aaaaaaaaaaaaaaaa' },
      { name: 'key-2', role: 'write', secret: 'key_bbbbbbbbbbbbbbbb' },
    ]);
    expect(config.port).toBe(3000);
    expect(config.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'credits-billing',
    });
    expect(config.stripe.livemode).toBe(false);
  });

  it('when .env.example is read, then it documents exactly the variables the processes read, with valid values', () => {
    const example = parseEnv(readFileSync(path.join(__dirname, '..', '..', '.env.example'), 'utf8'));
    const documented = Object.keys(example).filter((name) => !name.startsWith('DEV_'));
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
    const filledIn = { ...example, ...valid };
    expect(() => loadApiConfig(filledIn)).not.toThrow();
    expect(() => loadWorkerConfig(filledIn)).not.toThrow();
  });

  it('when DATABASE_POOL_MAX is set, then both processes size their pool by it; unset, 10', () => {
    expect(loadApiConfig(valid).databasePoolMax).toBe(10);
    expect(loadApiConfig({ ...valid, DATABASE_POOL_MAX: '40' }).databasePoolMax).toBe(40);
    expect(loadWorkerConfig({ ...valid, DATABASE_POOL_MAX: '3' }).databasePoolMax).toBe(3);
  });

  it('when values are missing or malformed, then every bad variable is named', () => {
    const issues = issuesOf(() =>
      loadApiConfig({
        ...valid,
        DATABASE_URL: 'mysql://x',
        TEMPORAL_ADDRESS: 'nope',
        PORT: 'eighty',
        STRIPE_WEBHOOK_SECRET: 'secret',
        DATABASE_POOL_MAX: '0',
      }),
    );
    expect(issues.map((issue) => issue.split(':')[0])).toEqual(
      expect.arrayContaining([
        'DATABASE_URL',
        'TEMPORAL_ADDRESS',
        'PORT',
        'STRIPE_WEBHOOK_SECRET.0',
        'DATABASE_POOL_MAX',
      ]),
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
      expect.stringMatching(/^TEMPORAL_PAYLOAD_KEYS: required in production/),
    ]);
  });

  it('when production has a live key, then livemode is on', () => {
    const config = loadApiConfig({
      ...valid,
      NODE_ENV: 'production',
      STRIPE_SECRET_KEY: 'sk_live_abc123',
      TEMPORAL_PAYLOAD_KEYS: `prod-1:${Buffer.alloc(32, 9).toString('base64')}`,
    });
    expect(config.stripe.livemode).toBe(true);
  });

  it('when an API key is too short, then it is refused', () => {
    expect(issuesOf(() => loadApiConfig({ ...valid, BILLING_API_KEYS: 'short' }))).toEqual([
      expect.stringMatching(/^BILLING_API_KEYS.0: each API key has at least 16 characters/),
    ]);
  });

  it('when API keys are named with a role, then each keeps its name and role, and a bare key is write', () => {
    const config = loadApiConfig({
      ...valid,
      BILLING_API_KEYS:
        'ops@example.com:admin:admin_secret_0123456789, key_aaaaaaaaaaaaaaaa, dash:read:s3cr3t:with:colons!',
    });
    expect(config.apiKeys).toEqual([
      { name: 'ops@example.com', role: 'admin', secret: 'admin_secret_0123456789' },
      { name: 'key-2', role: 'write', secret: 'key_aaaaaaaaaaaaaaaa' },
      { name: 'dash', role: 'read', secret: 's3cr3t:with:colons!' },
    ]);
  });

  it('when an API key entry is malformed, then the message says what to fix and never repeats the entry', () => {
    const secret = 'a_secret_that_must_not_leak_0123';
    const issues = issuesOf(() =>
      loadApiConfig({
        ...valid,
        BILLING_API_KEYS: [
          `ops:superuser:${secret}`,
          `bad name:admin:${secret}1`,
          `ops:admin`,
          `short:read:tiny`,
          `twin:write:${secret}2`,
          `twin:read:${secret}3`,
          `other:read:${secret}3`,
        ].join(','),
      }),
    );
    expect(issues).toEqual([
      'BILLING_API_KEYS.0: the role (between the two ":") is read, write or admin',
      'BILLING_API_KEYS.1: the name (before the first ":") is 1 to 64 letters, digits or _ . @ -',
      'BILLING_API_KEYS.2: an entry with a ":" is name:role:secret, for example ops:admin:<secret>',
      'BILLING_API_KEYS.3: each API key has at least 16 characters',
      'BILLING_API_KEYS.5: entry 5 has the name twin too: give each key its own name',
      'BILLING_API_KEYS.6: entry 6 has the same secret: give each key its own secret',
    ]);
    expect(issues.join('\n')).not.toContain(secret);
    expect(issues.join('\n')).not.toContain('superuser');
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
    expect(result.stderr).toContain('TEMPORAL_PAYLOAD_KEYS: required in production');
    expect(result.stderr).not.toContain('supersecretvalue');
    expect(result.stderr).not.toContain('an_api_key_that_is_secret');
  });
});

describe('configuration of the payload codec and its server', () => {
  const KEY_1 = 'k1:' + Buffer.alloc(32, 1).toString('base64');
  const KEY_2 = 'k2:' + Buffer.alloc(32, 2).toString('base64');

  it('when TEMPORAL_PAYLOAD_KEYS lists keys, then the first encrypts and all decrypt', () => {
    const config = loadWorkerConfig({ ...valid, TEMPORAL_PAYLOAD_KEYS: `${KEY_2}, ${KEY_1}` });
    expect(config.temporalPayloads.keyRing.currentKeyId).toBe('k2');
    expect(config.temporalPayloads.keyRing.keyIds).toEqual(['k2', 'k1']);
    expect(config.temporalPayloads).toMatchObject({ encrypt: true, developmentKey: false });
    // Logged or serialized, a ring shows its key IDs, never a key.
    const shown = `${JSON.stringify(config)} ${inspect(config, { depth: 10 })}`;
    expect(shown).toContain('k2');
    expect(shown).not.toContain(Buffer.alloc(32, 2).toString('base64'));
  });

  it('when TEMPORAL_PAYLOAD_KEYS is unset outside production, then the published development key is used and said so', () => {
    const config = loadApiConfig(valid);
    expect(config.temporalPayloads.developmentKey).toBe(true);
    expect(config.temporalPayloads.keyRing.keyIds).toEqual(['dev']);
    expect(config.codec).toEqual({ tokens: [], uiOrigins: [] });
  });

  it('when a key entry is malformed, then each is named by position and key ID, and no key material is repeated', () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    const issues = issuesOf(() =>
      loadWorkerConfig({
        ...valid,
        TEMPORAL_PAYLOAD_KEYS: [
          `k1:${short}`,
          'no-separator',
          `k1:${short}`,
          'bad id!:abc',
          'k3:not*base64',
        ].join(','),
      }),
    );
    expect(issues).toEqual([
      'TEMPORAL_PAYLOAD_KEYS: entry 1 (key "k1"): the key has 16 bytes, AES-256 needs 32 (generate one with `openssl rand -base64 32`)',
      'TEMPORAL_PAYLOAD_KEYS: entry 2: expected id:base64key, the id of 1-64 letters, digits, ".", "_" or "-"',
      'TEMPORAL_PAYLOAD_KEYS: entry 3 (key "k1"): the key has 16 bytes, AES-256 needs 32 (generate one with `openssl rand -base64 32`)',
      'TEMPORAL_PAYLOAD_KEYS: entry 4: expected id:base64key, the id of 1-64 letters, digits, ".", "_" or "-"',
      'TEMPORAL_PAYLOAD_KEYS: entry 5 (key "k3"): the key is not standard base64',
    ]);
    expect(issues.join('\n')).not.toContain(short);
    expect(issues.join('\n')).not.toContain('not*base64');
  });

  it('when production has no key ring, or only the development key, or turns encryption off, then it refuses to start', () => {
    const production = { ...valid, NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_abc123' };
    expect(issuesOf(() => loadWorkerConfig(production))).toEqual([
      'TEMPORAL_PAYLOAD_KEYS: required in production: id:base64key (a key: `openssl rand -base64 32`)',
    ]);
    expect(
      issuesOf(() =>
        loadApiConfig({ ...production, TEMPORAL_PAYLOAD_KEYS: `${KEY_1},${DEVELOPMENT_PAYLOAD_KEYS}` }),
      ),
    ).toEqual(['TEMPORAL_PAYLOAD_KEYS: production may not use the published development key']);
    expect(
      issuesOf(() =>
        loadWorkerConfig({ ...production, TEMPORAL_PAYLOAD_KEYS: KEY_1, TEMPORAL_PAYLOAD_ENCRYPTION: 'off' }),
      ),
    ).toEqual(['TEMPORAL_PAYLOAD_ENCRYPTION: only development may turn payload encryption off']);
    expect(
      issuesOf(() => loadWorkerConfig({ ...valid, NODE_ENV: 'test', TEMPORAL_PAYLOAD_ENCRYPTION: 'off' })),
    ).toEqual(['TEMPORAL_PAYLOAD_ENCRYPTION: only development may turn payload encryption off']);
    expect(loadWorkerConfig({ ...production, TEMPORAL_PAYLOAD_KEYS: KEY_1 }).temporalPayloads.encrypt).toBe(
      true,
    );
  });

  it('when codec tokens or UI origins are malformed, then they are refused', () => {
    const issues = issuesOf(() =>
      loadApiConfig({
        ...valid,
        TEMPORAL_CODEC_TOKEN: 'short,has/a/slash_0123456789abcdefghijklmnop',
        TEMPORAL_UI_ORIGIN: 'http://127.0.0.1:8233/,temporal.example.com',
      }),
    );
    expect(issues).toEqual([
      'TEMPORAL_CODEC_TOKEN.0: each codec token has 32 to 256 letters, digits, "_" or "-"',
      'TEMPORAL_CODEC_TOKEN.1: each codec token has 32 to 256 letters, digits, "_" or "-"',
      'TEMPORAL_UI_ORIGIN.0: each origin is scheme://host[:port] with no path, e.g. https://temporal.example.com',
      'TEMPORAL_UI_ORIGIN.1: each origin is scheme://host[:port] with no path, e.g. https://temporal.example.com',
    ]);
    const config = loadApiConfig({
      ...valid,
      TEMPORAL_CODEC_TOKEN: 'codec_token_0123456789abcdefghijklmnop',
      TEMPORAL_UI_ORIGIN: 'http://127.0.0.1:8233, https://temporal.example.com',
    });
    expect(config.codec).toEqual({
      tokens: ['codec_token_0123456789abcdefghijklmnop'],
      uiOrigins: ['http://127.0.0.1:8233', 'https://temporal.example.com'],
    });
  });
});

describe('configuration of API keys, entries a little off', () => {
  it('when BILLING_API_KEYS has a role in another case, or a bare secret with a colon, then it is refused; a secret may hold colons', () => {
    expect(() => parseApiKeys('ops:Admin:0123456789abcdefXYZ')).toThrow(/role/);
    expect(() => parseApiKeys('ops:admin :0123456789abcdefXYZ')).toThrow(/role/);
    expect(() => parseApiKeys('0123456789abcdef:XYZ')).toThrow(/name:role:secret/);
    expect(parseApiKeys('ops:admin:0123:4567:89abcdefXYZ')).toEqual([
      { name: 'ops', role: 'admin', secret: '0123:4567:89abcdefXYZ' },
    ]);
  });
});

describe('configuration of expiry notices', () => {
  it('when CREDIT_EXPIRY_NOTICE is unset, a duration or off, then notices go 7 days ahead, that long ahead, or never; anything else is refused by name', () => {
    expect(loadWorkerConfig(valid).creditExpiryNoticeMs).toBe(7 * 24 * 3600_000);
    expect(loadWorkerConfig({ ...valid, CREDIT_EXPIRY_NOTICE: '36 hours' }).creditExpiryNoticeMs).toBe(
      36 * 3600_000,
    );
    expect(loadWorkerConfig({ ...valid, CREDIT_EXPIRY_NOTICE: 'off' }).creditExpiryNoticeMs).toBeNull();
    for (const value of ['soon', '-1 days', '0 days', 'OFF ']) {
      const issues = issuesOf(() => loadWorkerConfig({ ...valid, CREDIT_EXPIRY_NOTICE: value }));
      expect({ value, issues: issues.map((issue) => issue.split(':')[0]) }).toEqual({
        value,
        issues: ['CREDIT_EXPIRY_NOTICE'],
      });
    }
  });
});
