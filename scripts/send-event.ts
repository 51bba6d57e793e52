import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadPackCatalog, type PackCatalog } from '../db/catalog';
import {
  checkoutSession,
  DEV_WEBHOOK_SECRET,
  deliverEvent,
  stripeEvent,
  stripeId,
  type StripeEvent,
} from './stripe-events';

/**
 * Sends realistic, correctly signed Stripe events to a running webhook (Stripe's own CLI cannot
 * reach Stripe offline). One subcommand per scenario; each builds a plan (the events to send, in
 * order, each any number of times at once) from the table SUBCOMMANDS below, so new Stripe
 * events (invoices, refunds, disputes) are one more entry.
 *
 *   npm run send-event -- purchase --account demo --pack growth
 */

export const DEFAULT_WEBHOOK_URL = 'http://127.0.0.1:3000/webhooks/stripe';

/** The webhook URL: the flag, else $WEBHOOK_URL, else the dev stack's. */
export function webhookUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.WEBHOOK_URL || DEFAULT_WEBHOOK_URL);
}

/** The signing secret: the flag, else the first of $STRIPE_WEBHOOK_SECRET, else the dev stack's. */
export function webhookSecretFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = (env.STRIPE_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((secret) => secret.trim())
    .find((secret) => secret.length > 0);
  return flag ?? fromEnv ?? DEV_WEBHOOK_SECRET;
}

type Values = Record<string, string | boolean | undefined>;

/** One event to deliver, `copies` times at once (more than one only to test deduplication). */
interface Delivery {
  event: StripeEvent;
  copies: number;
  /** Wait this long before sending it (a delayed payment settling later). */
  delayMs?: number;
}

interface Plan {
  sessionId: string | null;
  deliveries: Delivery[];
  /** A command to run afterwards, printed once everything was acknowledged. */
  next?: string;
}

interface Subcommand {
  summary: string;
  /** Option lines of the help text. */
  help: string[];
  options: NonNullable<ParseArgsConfig['options']>;
  build(values: Values, catalog: PackCatalog): Plan;
}

class UsageError extends Error {}

function text(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function required(values: Values, name: string): string {
  const value = text(values, name);
  if (!value) throw new UsageError(`--${name} is required`);
  return value;
}

function positiveInteger(values: Values, name: string, fallback: number): number {
  const value = text(values, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${name} must be a positive integer, got ${value}`);
  }
  return Number(value);
}

// --- checkout sessions ---------------------------------------------------------------------------

const sessionOptions = {
  account: { type: 'string', default: 'demo' },
  pack: { type: 'string', default: 'starter' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  credits: { type: 'string' },
  session: { type: 'string' },
  livemode: { type: 'boolean', default: false },
} satisfies NonNullable<ParseArgsConfig['options']>;

const sessionHelp = [
  '--account ID       the account to credit (default: demo)',
  '--pack ID          a pack of config/catalog/packs.json (default: starter); another ID needs --amount',
  "--amount CENTS     amount_total in minor units (default: the pack's catalog price, e.g. 900 = $9.00)",
  "--currency CODE    (default: the pack's currency)",
  "--credits N        metadata.credits as sent (default: the pack's credits, as the API sets it);",
  '                   another value is tampering: the purchase is held for review',
  '--session cs_…     the checkout session ID (default: a new one), e.g. one made by POST /v1/checkout/sessions',
  '--livemode         mark the session and event as live mode (held: the dev stack runs in test mode)',
];

/** A checkout session as Stripe would send it for the account and pack the flags name. */
function sessionFrom(
  values: Values,
  catalog: PackCatalog,
  paymentStatus: 'paid' | 'unpaid',
): Record<string, unknown> {
  const packId = required(values, 'pack');
  const pack = catalog.packs.find((candidate) => candidate.id === packId);
  const amountText = text(values, 'amount');
  if (!pack && amountText === undefined) {
    throw new UsageError(
      `pack ${packId} is not in the catalog (${catalog.packs.map((known) => known.id).join(', ')}); ` +
        'give --amount (and --currency) to send it anyway',
    );
  }
  if (amountText !== undefined && !/^\d+$/.test(amountText)) {
    throw new UsageError(`--amount is in minor units (cents), a whole number: got ${amountText}`);
  }
  const session = text(values, 'session');
  if (session !== undefined && !/^cs_\w+$/.test(session)) {
    throw new UsageError(`--session must look like cs_test_…, got ${session}`);
  }
  const credits = text(values, 'credits') ?? (pack ? String(pack.credits) : undefined);
  return checkoutSession({
    ...(session ? { id: session } : {}),
    accountId: required(values, 'account'),
    packId,
    amountTotal: amountText === undefined ? (pack?.priceCents ?? null) : Number(amountText),
    currency: text(values, 'currency') ?? pack?.currency ?? 'usd',
    paymentStatus,
    livemode: values.livemode === true,
    ...(credits === undefined ? {} : { metadata: { credits } }),
  });
}

function sessionEvent(type: string, session: Record<string, unknown>): StripeEvent {
  return stripeEvent(type, session, { livemode: session.livemode === true });
}

// --- other events --------------------------------------------------------------------------------

/** Stripe's object name and ID prefix for an event type, for events the service ignores. */
const OBJECT_KINDS: Array<[typePrefix: string, object: string, idPrefix: string]> = [
  ['customer.subscription.', 'subscription', 'sub'],
  ['customer.', 'customer', 'cus'],
  ['charge.dispute.', 'dispute', 'dp'],
  ['charge.refund.', 'refund', 're'],
  ['charge.', 'charge', 'ch'],
  ['invoice.', 'invoice', 'in'],
  ['payment_intent.', 'payment_intent', 'pi'],
  ['payment_method.', 'payment_method', 'pm'],
  ['setup_intent.', 'setup_intent', 'seti'],
  ['product.', 'product', 'prod'],
  ['price.', 'price', 'price'],
  ['payout.', 'payout', 'po'],
  ['refund.', 'refund', 're'],
];

function rawObject(type: string, values: Values): Record<string, unknown> {
  const data = text(values, 'data');
  if (data !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      throw new UsageError('--data must be a JSON object');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new UsageError('--data must be a JSON object');
    }
    return parsed as Record<string, unknown>;
  }
  // The service validates every checkout.session.* object it routes, so send a whole one.
  if (type.startsWith('checkout.session.')) {
    return checkoutSession({ paymentStatus: 'unpaid', livemode: values.livemode === true });
  }
  const [, object, idPrefix] = OBJECT_KINDS.find(([prefix]) => type.startsWith(prefix)) ?? [
    '',
    type.split('.').slice(0, -1).join('.') || type,
    'obj',
  ];
  return {
    id: stripeId(idPrefix),
    object,
    created: Math.floor(Date.now() / 1000),
    livemode: values.livemode === true,
    metadata: {},
  };
}

// --- the table -----------------------------------------------------------------------------------

export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  purchase: {
    summary: 'checkout.session.completed, paid: the pack is credited',
    help: sessionHelp,
    options: sessionOptions,
    build(values, catalog) {
      const session = sessionFrom(values, catalog, 'paid');
      return {
        sessionId: session.id as string,
        deliveries: [{ event: sessionEvent('checkout.session.completed', session), copies: 1 }],
      };
    },
  },

  'purchase-delayed': {
    summary: 'checkout.session.completed, unpaid (delayed payment method): recorded, no credits',
    help: [
      ...sessionHelp,
      '--then-succeed     then send checkout.session.async_payment_succeeded for the same session',
      '--delay MS         wait this long before the success (default: 0)',
    ],
    options: {
      ...sessionOptions,
      'then-succeed': { type: 'boolean', default: false },
      delay: { type: 'string', default: '0' },
    },
    build(values, catalog) {
      const unpaid = sessionFrom(values, catalog, 'unpaid');
      const deliveries: Delivery[] = [
        { event: sessionEvent('checkout.session.completed', unpaid), copies: 1 },
      ];
      if (values['then-succeed'] === true) {
        const delay = required(values, 'delay');
        if (!/^\d+$/.test(delay)) throw new UsageError(`--delay is in milliseconds, got ${delay}`);
        deliveries.push({
          event: sessionEvent('checkout.session.async_payment_succeeded', {
            ...unpaid,
            payment_status: 'paid',
          }),
          copies: 1,
          delayMs: Number(delay),
        });
      }
      const then = values['then-succeed'] === true;
      // The success event carries the same session: the same account, pack and amount.
      const sameSession = ['account', 'pack', 'amount', 'currency', 'credits']
        .flatMap((name) => {
          const value = text(values, name);
          return value === undefined ? [] : [` --${name} ${value}`];
        })
        .join('');
      const livemode = values.livemode === true ? ' --livemode' : '';
      return {
        sessionId: unpaid.id as string,
        deliveries,
        ...(then
          ? {}
          : {
              next: `npm run send-event -- async-succeeded --session ${unpaid.id as string}${sameSession}${livemode}`,
            }),
      };
    },
  },

  'async-succeeded': {
    summary: 'checkout.session.async_payment_succeeded for a session sent earlier as unpaid (same options)',
    help: sessionHelp.map((line) =>
      line.startsWith('--session') ? '--session cs_…     the session that completed unpaid (required)' : line,
    ),
    options: sessionOptions,
    build(values, catalog) {
      required(values, 'session');
      const session = sessionFrom(values, catalog, 'paid');
      return {
        sessionId: session.id as string,
        deliveries: [{ event: sessionEvent('checkout.session.async_payment_succeeded', session), copies: 1 }],
      };
    },
  },

  duplicate: {
    summary: 'one paid purchase event delivered N times at once: one run starts, the rest are duplicates',
    help: [...sessionHelp, '--times N          how many copies, sent concurrently (default: 5)'],
    options: { ...sessionOptions, times: { type: 'string', default: '5' } },
    build(values, catalog) {
      const session = sessionFrom(values, catalog, 'paid');
      return {
        sessionId: session.id as string,
        deliveries: [
          {
            event: sessionEvent('checkout.session.completed', session),
            copies: positiveInteger(values, 'times', 5),
          },
        ],
      };
    },
  },

  raw: {
    summary: 'any other event type (the service acknowledges it as ignored)',
    help: [
      '--type TYPE        the event type, e.g. customer.created (required)',
      '--data JSON        data.object (default: a minimal object of the matching kind)',
      '--livemode         mark the event as live mode',
    ],
    options: {
      type: { type: 'string' },
      data: { type: 'string' },
      livemode: { type: 'boolean', default: false },
    },
    build(values) {
      const type = required(values, 'type');
      if (!/^[a-z_]+(\.[a-z_]+)+$/.test(type)) {
        throw new UsageError(`--type must look like a Stripe event type (customer.created), got ${type}`);
      }
      const object = rawObject(type, values);
      const sessionId = typeof object.id === 'string' && object.id.startsWith('cs_') ? object.id : null;
      return {
        sessionId,
        deliveries: [{ event: stripeEvent(type, object, { livemode: values.livemode === true }), copies: 1 }],
      };
    },
  },
};

const commonOptions = {
  url: { type: 'string' },
  secret: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} satisfies NonNullable<ParseArgsConfig['options']>;

const commonHelp = [
  `--url URL          the webhook (default: $WEBHOOK_URL, else ${DEFAULT_WEBHOOK_URL})`,
  "--secret whsec_…   signing secret (default: the first of $STRIPE_WEBHOOK_SECRET, else the dev stack's)",
  '-h, --help         this help',
];

function usage(name?: string): string {
  const indent = (lines: string[]) => lines.map((line) => `  ${line}`).join('\n');
  const command = name ? SUBCOMMANDS[name] : undefined;
  if (name && command) {
    return `usage: npm run send-event -- ${name} [options]\n\n${command.summary}\n\n${indent([
      ...command.help,
      ...commonHelp,
    ])}\n`;
  }
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((key) => key.length));
  return (
    'usage: npm run send-event -- <command> [options]\n\n' +
    'Sends signed Stripe events to a running webhook and prints what it answered.\n\n' +
    `commands:\n${indent(
      Object.entries(SUBCOMMANDS).map(([key, entry]) => `${key.padEnd(width)}  ${entry.summary}`),
    )}\n\n` +
    `common options:\n${indent(commonHelp)}\n\n` +
    'npm run send-event -- <command> --help lists the options of a command.\n'
  );
}

const seeHelp = (name: string) => `see: npm run send-event -- ${name} --help\n`;

/** Whether every copy was acknowledged (2xx), and whether a workflow took the event. */
async function deliver(
  url: string,
  delivery: Delivery,
  secret: string,
): Promise<{ ok: boolean; workflow: boolean }> {
  if (delivery.delayMs) await new Promise((resolve) => setTimeout(resolve, delivery.delayMs));
  const { event } = delivery;
  process.stdout.write(`→ ${event.type} ${event.id}${delivery.copies > 1 ? ` ×${delivery.copies}` : ''}\n`);
  const answers = await Promise.all(
    Array.from({ length: delivery.copies }, () => deliverEvent(url, event, secret)),
  );
  let ok = true;
  let workflow = false;
  for (const answer of answers) {
    ok &&= answer.status >= 200 && answer.status < 300;
    const status = (answer.body as { status?: unknown } | null)?.status;
    workflow ||= status === 'started' || status === 'duplicate';
    const body = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    process.stdout.write(`← ${answer.status} ${body}\n`);
  }
  return { ok, workflow };
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = SUBCOMMANDS[name];
  if (!command) {
    process.stderr.write(`unknown command ${name}\n\n${usage()}`);
    return 2;
  }
  let values: Values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { ...command.options, ...commonOptions },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${seeHelp(name)}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(usage(name));
    return 0;
  }

  let plan: Plan;
  try {
    plan = command.build(values, loadPackCatalog());
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n${seeHelp(name)}`);
    return 2;
  }
  const url = webhookUrlFrom(text(values, 'url'));
  const secret = webhookSecretFrom(text(values, 'secret'));
  if (plan.sessionId) process.stdout.write(`session ${plan.sessionId}\n`);

  let workflows = false;
  for (const delivery of plan.deliveries) {
    let answered: { ok: boolean; workflow: boolean };
    try {
      answered = await deliver(url, delivery, secret);
    } catch (error) {
      const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      process.stderr.write(`could not reach ${url}: ${why} (is the API running? \`npm run dev\`)\n`);
      return 1;
    }
    // A later event of the plan means nothing if Stripe would have retried this one.
    if (!answered.ok) return 1;
    workflows ||= answered.workflow;
  }
  if (plan.sessionId && workflows) {
    process.stdout.write(`purchase: GET ${new URL(url).origin}/v1/purchases/${plan.sessionId}\n`);
  }
  if (plan.next) process.stdout.write(`when the payment settles: ${plan.next}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
