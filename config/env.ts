import { msToNumber } from '@temporalio/common/lib/time';
import { z } from 'zod';
import type { Duration } from '@temporalio/common';
import { PayloadKeyRing } from './payload-codec';

/**
 * Configuration comes from the environment, is parsed once at start-up, and a process with bad
 * configuration exits with a message naming every variable to fix. Secrets have no defaults.
 */

const csv = z
  .string()
  .default('')
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  );

// Durations use Temporal's own format ("30s", "7 days", or milliseconds as a number).
const duration = z
  .string()
  .regex(
    /^\d+(\.\d+)?\s*(ms|s|m|h|d|seconds?|minutes?|hours?|days?)?$/i,
    'a duration such as "30s" or "7 days"',
  )
  // The pattern admits only what Temporal's duration parser reads.
  .transform((value) => value as Duration);

const port = z.coerce.number().int().min(0).max(65535);

/** How long before a grant expires its notice goes out unless CREDIT_EXPIRY_NOTICE says otherwise. */
export const DEFAULT_CREDIT_EXPIRY_NOTICE = '7 days';
// How long a finished record is kept: long enough that nothing still in flight could need it.
const retentionDuration = duration.refine((value) => msToNumber(value) >= 24 * 3600_000, 'at least 1 day');

/** Where the worker serves its metrics unless WORKER_METRICS_PORT says otherwise. */
export const DEFAULT_WORKER_METRICS_PORT = 9464;

/**
 * The payload key ring outside production when TEMPORAL_PAYLOAD_KEYS is unset (`npm run dev`, a
 * process started by hand). Published here, so it protects nothing: production refuses to start
 * without a ring of its own, and refuses this key in it.
 */
export const DEVELOPMENT_PAYLOAD_KEYS = 'dev:XMv/KLDE8zdw4bOR8UyEZov6Ntu7XeCnTtXzF4XDc34=';
const DEVELOPMENT_KEY_RING = PayloadKeyRing.from(DEVELOPMENT_PAYLOAD_KEYS);

// `id:base64key,…`; issues name an entry by position and key ID, never by its value.
const payloadKeyRing = z.string().transform((value, ctx) => {
  const parsed = PayloadKeyRing.parse(value);
  if ('issues' in parsed) {
    for (const message of parsed.issues) ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  }
  return parsed.ring;
});

// What a browser sends as `Origin`: scheme://host[:port], nothing after it.
const origin = z.string().refine((value) => {
  try {
    return new URL(value).origin === value;
  } catch {
    return false;
  }
}, 'each origin is scheme://host[:port] with no path, e.g. https://temporal.example.com');

/** What an API key may do; each role includes the ones before it. */
export const API_ROLES = ['read', 'write', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** One entry of BILLING_API_KEYS. `name` is what logs, grants and the audit log show; never the secret. */
export interface ApiKey {
  name: string;
  role: ApiRole;
  secret: string;
}

const API_KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

// `name:role:secret`, or a bare secret (the form before roles existed: role write, named key-N).
// The messages never repeat a value: an entry that is malformed may still hold a secret.
const apiKeyList = csv.transform((entries, ctx): ApiKey[] => {
  const keys = entries.map((entry, index): ApiKey | null => {
    const problem = (message: string) => {
      ctx.addIssue({ code: 'custom', path: [index], message });
      return null;
    };
    const [first, second, ...rest] = entry.split(':');
    const named = second !== undefined;
    const key = named
      ? { name: first ?? '', role: second as ApiRole, secret: rest.join(':') }
      : { name: `key-${index + 1}`, role: 'write' as const, secret: entry };
    if (named && rest.length === 0) {
      return problem('an entry with a ":" is name:role:secret, for example ops:admin:<secret>');
    }
    if (named && !API_KEY_NAME.test(key.name)) {
      return problem('the name (before the first ":") is 1 to 64 letters, digits or _ . @ -');
    }
    if (!API_ROLES.includes(key.role)) {
      return problem('the role (between the two ":") is read, write or admin');
    }
    if (key.secret.length < 16) return problem('each API key has at least 16 characters');
    if (/\s/.test(key.secret)) return problem('an API key has no spaces');
    return key;
  });
  const seenNames = new Map<string, number>();
  const seenSecrets = new Map<string, number>();
  keys.forEach((key, index) => {
    if (!key) return;
    const sameName = seenNames.get(key.name);
    const sameSecret = seenSecrets.get(key.secret);
    if (sameName !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [index],
        message: `entry ${sameName + 1} has the name ${key.name} too: give each key its own name`,
      });
    }
    if (sameSecret !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [index],
        message: `entry ${sameSecret + 1} has the same secret: give each key its own secret`,
      });
    }
    seenNames.set(key.name, index);
    seenSecrets.set(key.secret, index);
  });
  return keys.filter((key): key is ApiKey => key !== null);
});

// Explicit: z.coerce.boolean() would read "false" as true.
const flag = z.enum(['true', 'false']).transform((value) => value === 'true');

// "2.9" (percent) → 290 basis points, exactly.
const percentAsBps = z
  .string()
  .regex(/^\d{1,2}(\.\d{1,2})?$/, 'a percentage below 100 with at most two decimals, e.g. "2.9"')
  .transform((value) => {
    const [whole = '0', fraction = ''] = value.split('.');
    return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
  });

const baseSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'a postgres:// URL' }),
  // Connections each process may open; a movement holds one for its transaction.
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(1000).default(10),
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'host:port, for example 127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('credits-billing'),
  STRIPE_SECRET_KEY: z
    .string()
    .regex(/^(sk|rk)_(test|live)_[0-9a-zA-Z]+$/, 'a Stripe secret key (sk_test_…, sk_live_…)')
    .optional(),
  // Only for a local Stripe (`npm run dev` sets it) or stripe-mock: where the Stripe SDK sends its
  // requests. Never in production, never with a live key (refineProduction).
  STRIPE_API_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  // Encrypts every Temporal payload: `id:base64key` entries, the first encrypts, all decrypt.
  TEMPORAL_PAYLOAD_KEYS: payloadKeyRing.optional(),
  // What an event's workflow is started with, by the webhook and by reconciliation alike.
  // How long a purchase that failed validation waits for an operator's decision.
  PURCHASE_REVIEW_TIMEOUT: duration.default('7 days'),
  // How long a receipt keeps being retried before it is recorded as failed.
  RECEIPT_DEADLINE: duration.default('3 days'),
  // Development only: `off` stops encrypting new payloads (decrypting goes on), to measure the codec.
  TEMPORAL_PAYLOAD_ENCRYPTION: z.enum(['on', 'off']).default('on'),
});

const workerSchema = baseSchema.extend({
  SMTP_URL: z.url({ protocol: /^smtps?$/, error: 'an smtp:// or smtps:// URL' }),
  EMAIL_FROM: z.string().min(3).default('Credits <billing@localhost>'),
  // Worker-local: how many activities run at once on one worker process.
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().positive().default(20),
  // The worker's Prometheus endpoint (GET /metrics): a port (0: one the OS picks, logged at
  // start-up), or `off`. Unset: 9464, or 0 under NODE_ENV=test so parallel runs never collide.
  WORKER_METRICS_PORT: z
    .union([z.literal('off'), port], { error: 'a port (0: one the OS picks) or off' })
    .optional(),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  // How often the maintenance schedule runs: expire due grants, release due holds, sweep the outbox.
  MAINTENANCE_INTERVAL: duration.default('1 minute'),
  // An email still pending this long after it was queued, whose workflow has closed, is delivered
  // by the outbox sweep; one still undeliverable after the give-up age is recorded as failed.
  OUTBOX_SWEEP_AFTER: duration.default('15 minutes'),
  OUTBOX_GIVE_UP_AFTER: duration.default('3 days'),
  // Where the on-session Checkout of a failed automatic top-up returns the customer to.
  TOPUP_RETURN_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:3000/'),
  // Outbound webhooks: one attempt's budget, the retry backoff (doubling from the first wait up to
  // the longest), how long a delivery is retried, and how often a dispatcher looks on its own.
  WEBHOOK_ATTEMPT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  WEBHOOK_RETRY_INITIAL: duration.default('30 seconds'),
  WEBHOOK_RETRY_MAX_INTERVAL: duration.default('1 hour'),
  WEBHOOK_RETRY_WINDOW: duration.default('3 days'),
  WEBHOOK_DISPATCH_POLL: duration.default('1 minute'),
  // Reconciliation with Stripe's Events API (needs STRIPE_SECRET_KEY): how often it runs, how far
  // before the watermark each run starts again, how far back the first run reads (Stripe keeps 30
  // days), and how recent an event may be and still be left to its webhook.
  RECONCILE_INTERVAL: duration.default('15 minutes'),
  RECONCILE_OVERLAP: duration.default('15 minutes'),
  RECONCILE_LOOKBACK: duration
    .default('30 days')
    .refine(
      (value) => msToNumber(value) <= 30 * 24 * 3600_000,
      "at most 30 days: Stripe's Events API keeps no more",
    ),
  RECONCILE_DELAY: duration.default('5 minutes'),
  // How long before a grant with credits left expires its account is told (a `credits.expiring`
  // event and an email, once per grant, by the maintenance schedule), or `off`.
  CREDIT_EXPIRY_NOTICE: z
    .union([z.literal('off'), duration], { error: 'a duration such as "7 days", or off' })
    .default(DEFAULT_CREDIT_EXPIRY_NOTICE)
    .refine((value) => value === 'off' || msToNumber(value) > 0, {
      message: 'longer than 0 (or off)',
      // Only a value the union accepted is a duration to measure.
      when: (payload) => payload.issues.length === 0,
    }),
  // Retention: the maintenance schedule deletes outbound events (with their finished deliveries),
  // emails and rejected events older than these, in batches of RETENTION_BATCH_SIZE rows; never an
  // event still pending delivery nor an email still pending. At least a day each.
  RETENTION_OUTBOUND_EVENTS: retentionDuration.default('90 days'),
  RETENTION_EMAIL_OUTBOX: retentionDuration.default('180 days'),
  RETENTION_REJECTED_EVENTS: retentionDuration.default('90 days'),
  // Usage events are kept forever (each counts once per account and ID, forever); their
  // `properties` are cleared after this.
  RETENTION_USAGE_PROPERTIES: retentionDuration.default('90 days'),
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
});

/** The keys of a BILLING_API_KEYS value, for scripts that call the API with one of them. */
export function parseApiKeys(value: string | undefined): ApiKey[] {
  const result = apiKeyList.safeParse(value);
  if (!result.success)
    throw new ConfigError(
      result.error.issues.map((issue) => `BILLING_API_KEYS.${issue.path.join('.')}: ${issue.message}`),
    );
  return result.data;
}

const apiSchema = baseSchema.extend({
  PORT: port.default(3000),
  // Loopback unless told otherwise: a container sets 0.0.0.0 to be reachable from outside.
  HOST: z.string().min(1).default('127.0.0.1'),
  STRIPE_WEBHOOK_SECRET: csv.pipe(z.array(z.string().regex(/^whsec_\S+$/, 'each secret starts with whsec_'))),
  BILLING_API_KEYS: apiKeyList,
  PUBLIC_BASE_URL: z.url().optional(),
  CHECKOUT_ALLOWED_REDIRECT_HOSTS: csv,
  CUSTOM_CREDITS_UNIT_PRICE_CENTS: z.coerce.number().int().positive().default(9),
  CUSTOM_CREDITS_MIN: z.coerce.number().int().positive().default(100),
  CUSTOM_CREDITS_MAX: z.coerce.number().int().positive().default(100_000),
  CUSTOM_CREDITS_CURRENCY: z
    .string()
    .regex(/^[a-z]{3}$/, 'a lower-case ISO currency code')
    .default('usd'),
  CHECKOUT_PASS_CARD_FEE: flag.default(false),
  CARD_FEE_PERCENT: percentAsBps.default(290),
  CARD_FEE_FIXED_CENTS: z.coerce.number().int().min(0).default(30),
  // Past this, the webhook answers 503 so that Stripe retries later.
  WEBHOOK_TEMPORAL_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  // How long a review decision (the run's `decide` update) may take to be delivered to a worker
  // and applied; past it, 503 review_not_delivered (Temporal keeps it for when a worker is back).
  REVIEW_APPLY_WAIT_MS: z.coerce.number().int().positive().max(60_000).default(10_000),
  WEBHOOK_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024),
  // Bearer tokens of the codec server (/codec/encode, /codec/decode); none: the codec server is off.
  TEMPORAL_CODEC_TOKEN: csv.pipe(
    z.array(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]{32,256}$/, 'each codec token has 32 to 256 letters, digits, "_" or "-"'),
    ),
  ),
  // The Temporal UI's origins, the only ones a browser may call the codec server from.
  TEMPORAL_UI_ORIGIN: csv.pipe(z.array(origin)),
});

/** Every variable the API and the worker read (`.env.example` documents each one). */
export const CONFIG_VARIABLES: readonly string[] = [
  ...new Set([...Object.keys(apiSchema.shape), ...Object.keys(workerSchema.shape)]),
];

function isLiveKey(key: string | undefined): boolean {
  return key !== undefined && /^(sk|rk)_live_/.test(key);
}

function refineProduction(
  env: {
    NODE_ENV: string;
    STRIPE_SECRET_KEY?: string | undefined;
    STRIPE_API_BASE_URL?: string | undefined;
    TEMPORAL_PAYLOAD_KEYS?: PayloadKeyRing | undefined;
    TEMPORAL_PAYLOAD_ENCRYPTION: 'on' | 'off';
  },
  ctx: z.RefinementCtx,
): void {
  if (env.NODE_ENV === 'production' && !isLiveKey(env.STRIPE_SECRET_KEY)) {
    ctx.addIssue({
      code: 'custom',
      path: ['STRIPE_SECRET_KEY'],
      message: 'production needs a live-mode key (sk_live_… or rk_live_…)',
    });
  }
  // A base URL sends the key and every payment to somewhere that is not Stripe: a local Stripe is
  // for development, and a live key must never reach one.
  if (env.STRIPE_API_BASE_URL && (env.NODE_ENV === 'production' || isLiveKey(env.STRIPE_SECRET_KEY))) {
    ctx.addIssue({
      code: 'custom',
      path: ['STRIPE_API_BASE_URL'],
      message: `only for a local Stripe in development: unset it ${
        env.NODE_ENV === 'production' ? 'in production' : 'with a live-mode key'
      }`,
    });
  }
  if (env.NODE_ENV === 'production' && !env.TEMPORAL_PAYLOAD_KEYS) {
    ctx.addIssue({
      code: 'custom',
      path: ['TEMPORAL_PAYLOAD_KEYS'],
      message: 'required in production: id:base64key (a key: `openssl rand -base64 32`)',
    });
  }
  if (env.NODE_ENV === 'production' && env.TEMPORAL_PAYLOAD_KEYS?.sharesKeyWith(DEVELOPMENT_KEY_RING)) {
    ctx.addIssue({
      code: 'custom',
      path: ['TEMPORAL_PAYLOAD_KEYS'],
      message: 'production may not use the published development key',
    });
  }
  if (env.NODE_ENV !== 'development' && env.TEMPORAL_PAYLOAD_ENCRYPTION === 'off') {
    ctx.addIssue({
      code: 'custom',
      path: ['TEMPORAL_PAYLOAD_ENCRYPTION'],
      message: 'only development may turn payload encryption off',
    });
  }
}

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function parse<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.output<T> {
  // An empty variable means "unset", so that `FOO=` in an env file falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
    );
  }
  return result.data;
}

function common(env: z.output<typeof baseSchema>) {
  return {
    nodeEnv: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    databaseUrl: env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    temporal: {
      address: env.TEMPORAL_ADDRESS,
      namespace: env.TEMPORAL_NAMESPACE,
      taskQueue: env.TEMPORAL_TASK_QUEUE,
    },
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY,
      // Events whose livemode differs from the key's mode are never credited.
      livemode: isLiveKey(env.STRIPE_SECRET_KEY),
      apiBaseUrl: env.STRIPE_API_BASE_URL,
    },
    // What every Temporal client and worker encrypts payloads with (config/payload-codec.ts).
    temporalPayloads: {
      keyRing: env.TEMPORAL_PAYLOAD_KEYS ?? DEVELOPMENT_KEY_RING,
      encrypt: env.TEMPORAL_PAYLOAD_ENCRYPTION === 'on',
      /** True when the published development key is in use (TEMPORAL_PAYLOAD_KEYS unset). */
      developmentKey: env.TEMPORAL_PAYLOAD_KEYS === undefined,
    },
  };
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = parse(workerSchema.superRefine(refineProduction), env);
  return {
    ...common(parsed),
    smtpUrl: parsed.SMTP_URL,
    emailFrom: parsed.EMAIL_FROM,
    maxConcurrentActivities: parsed.WORKER_MAX_CONCURRENT_ACTIVITIES,
    metrics:
      parsed.WORKER_METRICS_PORT === 'off'
        ? null
        : {
            host: parsed.WORKER_METRICS_HOST,
            port:
              parsed.WORKER_METRICS_PORT ?? (parsed.NODE_ENV === 'test' ? 0 : DEFAULT_WORKER_METRICS_PORT),
          },
    maintenance: {
      interval: parsed.MAINTENANCE_INTERVAL,
      outboxSweepAfter: parsed.OUTBOX_SWEEP_AFTER,
      outboxGiveUpAfter: parsed.OUTBOX_GIVE_UP_AFTER,
    },
    topupReturnUrl: parsed.TOPUP_RETURN_URL,
    outboundWebhooks: {
      attemptTimeoutMs: parsed.WEBHOOK_ATTEMPT_TIMEOUT_MS,
      retryInitial: parsed.WEBHOOK_RETRY_INITIAL,
      retryMaxInterval: parsed.WEBHOOK_RETRY_MAX_INTERVAL,
      retryWindow: parsed.WEBHOOK_RETRY_WINDOW,
      dispatchPoll: parsed.WEBHOOK_DISPATCH_POLL,
    },
    routes: eventRouteSettings(parsed),
    retention: {
      outboundEventsMs: msToNumber(parsed.RETENTION_OUTBOUND_EVENTS),
      emailOutboxMs: msToNumber(parsed.RETENTION_EMAIL_OUTBOX),
      rejectedEventsMs: msToNumber(parsed.RETENTION_REJECTED_EVENTS),
      usagePropertiesMs: msToNumber(parsed.RETENTION_USAGE_PROPERTIES),
      batchSize: parsed.RETENTION_BATCH_SIZE,
    },
    reconcile: {
      interval: parsed.RECONCILE_INTERVAL,
      overlapSeconds: Math.round(msToNumber(parsed.RECONCILE_OVERLAP) / 1000),
      lookbackSeconds: Math.round(msToNumber(parsed.RECONCILE_LOOKBACK) / 1000),
      delaySeconds: Math.round(msToNumber(parsed.RECONCILE_DELAY) / 1000),
    },
    /** How long before its expiry a grant's notice goes out; null: no notices. */
    creditExpiryNoticeMs:
      parsed.CREDIT_EXPIRY_NOTICE === 'off' ? null : msToNumber(parsed.CREDIT_EXPIRY_NOTICE),
  };
}

function eventRouteSettings(env: { PURCHASE_REVIEW_TIMEOUT: Duration; RECEIPT_DEADLINE: Duration }) {
  return { purchaseReviewTimeout: env.PURCHASE_REVIEW_TIMEOUT, receiptDeadline: env.RECEIPT_DEADLINE };
}

/** `npm run reconcile`: Temporal, Stripe and what event workflows are started with. */
export function loadReconcileCommandConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = parse(baseSchema.superRefine(refineProduction), env);
  return { ...common(parsed), routes: eventRouteSettings(parsed) };
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = parse(
    apiSchema.superRefine((value, ctx) => {
      refineProduction(value, ctx);
      if (value.NODE_ENV !== 'production') return;
      if (value.STRIPE_WEBHOOK_SECRET.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['STRIPE_WEBHOOK_SECRET'], message: 'required in production' });
      }
      if (value.BILLING_API_KEYS.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['BILLING_API_KEYS'], message: 'required in production' });
      }
    }),
    env,
  );
  return {
    ...common(parsed),
    port: parsed.PORT,
    host: parsed.HOST,
    publicBaseUrl: parsed.PUBLIC_BASE_URL ?? `http://localhost:${parsed.PORT}`,
    webhookSecrets: parsed.STRIPE_WEBHOOK_SECRET,
    apiKeys: parsed.BILLING_API_KEYS,
    checkoutAllowedRedirectHosts: parsed.CHECKOUT_ALLOWED_REDIRECT_HOSTS,
    customCredits: {
      unitPriceCents: parsed.CUSTOM_CREDITS_UNIT_PRICE_CENTS,
      minCredits: parsed.CUSTOM_CREDITS_MIN,
      maxCredits: parsed.CUSTOM_CREDITS_MAX,
      currency: parsed.CUSTOM_CREDITS_CURRENCY,
      fee: parsed.CHECKOUT_PASS_CARD_FEE
        ? { percentBps: parsed.CARD_FEE_PERCENT, fixedCents: parsed.CARD_FEE_FIXED_CENTS }
        : null,
    },
    purchaseReviewTimeout: parsed.PURCHASE_REVIEW_TIMEOUT,
    receiptDeadline: parsed.RECEIPT_DEADLINE,
    webhookTemporalTimeoutMs: parsed.WEBHOOK_TEMPORAL_TIMEOUT_MS,
    reviewApplyWaitMs: parsed.REVIEW_APPLY_WAIT_MS,
    webhookMaxBodyBytes: parsed.WEBHOOK_MAX_BODY_BYTES,
    codec: { tokens: parsed.TEMPORAL_CODEC_TOKEN, uiOrigins: parsed.TEMPORAL_UI_ORIGIN },
  };
}

export type WorkerConfig = ReturnType<typeof loadWorkerConfig>;
export type ApiConfig = ReturnType<typeof loadApiConfig>;

/** For process entry points: parse, or print what to fix and exit. */
export function loadOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee .env.example for every variable and its meaning.\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}
