import { z } from 'zod';

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
  );

const port = z.coerce.number().int().min(0).max(65535);

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
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'host:port, for example 127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('credits-billing'),
  STRIPE_SECRET_KEY: z
    .string()
    .regex(/^(sk|rk)_(test|live)_[0-9a-zA-Z]+$/, 'a Stripe secret key (sk_test_…, sk_live_…)')
    .optional(),
  // Only for stripe-mock or a local stand-in: where the Stripe SDK sends its requests.
  STRIPE_API_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
});

const workerSchema = baseSchema.extend({
  SMTP_URL: z.url({ protocol: /^smtps?$/, error: 'an smtp:// or smtps:// URL' }),
  EMAIL_FROM: z.string().min(3).default('Credits <billing@localhost>'),
  // Worker-local: how many activities run at once on one worker process.
  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().positive().default(20),
  // How often the maintenance schedule runs: expire due grants, release due holds, sweep the outbox.
  MAINTENANCE_INTERVAL: duration.default('1 minute'),
  // An email still pending this long after it was queued, whose workflow has closed, is delivered
  // by the outbox sweep; one still undeliverable after the give-up age is recorded as failed.
  OUTBOX_SWEEP_AFTER: duration.default('15 minutes'),
  OUTBOX_GIVE_UP_AFTER: duration.default('3 days'),
});

const apiSchema = baseSchema.extend({
  PORT: port.default(3000),
  // Loopback unless told otherwise: a container sets 0.0.0.0 to be reachable from outside.
  HOST: z.string().min(1).default('127.0.0.1'),
  STRIPE_WEBHOOK_SECRET: csv.pipe(z.array(z.string().regex(/^whsec_\S+$/, 'each secret starts with whsec_'))),
  BILLING_API_KEYS: csv.pipe(z.array(z.string().min(16, 'each API key has at least 16 characters'))),
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
  // How long a purchase that failed validation waits for an operator's decision.
  PURCHASE_REVIEW_TIMEOUT: duration.default('7 days'),
  // How long a receipt keeps being retried before it is recorded as failed.
  RECEIPT_DEADLINE: duration.default('3 days'),
  // Past this, the webhook answers 503 so that Stripe retries later.
  WEBHOOK_TEMPORAL_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  WEBHOOK_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(256 * 1024),
});

/** Every variable the API and the worker read (`.env.example` documents each one). */
export const CONFIG_VARIABLES: readonly string[] = [
  ...new Set([...Object.keys(apiSchema.shape), ...Object.keys(workerSchema.shape)]),
];

function isLiveKey(key: string | undefined): boolean {
  return key !== undefined && /^(sk|rk)_live_/.test(key);
}

function refineProduction(
  env: { NODE_ENV: string; STRIPE_SECRET_KEY?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (env.NODE_ENV === 'production' && !isLiveKey(env.STRIPE_SECRET_KEY)) {
    ctx.addIssue({
      code: 'custom',
      path: ['STRIPE_SECRET_KEY'],
      message: 'production needs a live-mode key (sk_live_… or rk_live_…)',
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
  };
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = parse(workerSchema.superRefine(refineProduction), env);
  return {
    ...common(parsed),
    smtpUrl: parsed.SMTP_URL,
    emailFrom: parsed.EMAIL_FROM,
    maxConcurrentActivities: parsed.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maintenance: {
      interval: parsed.MAINTENANCE_INTERVAL,
      outboxSweepAfter: parsed.OUTBOX_SWEEP_AFTER,
      outboxGiveUpAfter: parsed.OUTBOX_GIVE_UP_AFTER,
    },
  };
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
    webhookMaxBodyBytes: parsed.WEBHOOK_MAX_BODY_BYTES,
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
