import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadPackCatalog, type PackCatalog } from '../db/catalog';
import { loadPlanCatalog } from '../db/plan-catalog';
import { charge, dispute, invoice, subscription } from './stripe-billing-events';
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
  /** Follow-up commands (a renewal, a refund…), printed once everything was acknowledged. */
  notes?: string[];
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

/** Objects of routed event types are validated too: send whole ones (the most specific prefix first). */
const WHOLE_OBJECTS: Array<
  [typePrefix: string, build: (options: { livemode: boolean }) => Record<string, unknown>]
> = [
  ['customer.subscription.', subscription],
  ['invoice.', invoice],
  ['charge.dispute.', dispute],
  ['charge.', charge],
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
  const livemode = values.livemode === true;
  const whole = WHOLE_OBJECTS.find(([prefix]) => type.startsWith(prefix));
  if (whole) return whole[1]({ livemode });
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

// --- subscriptions, refunds, disputes -----------------------------------------------------------

const DAY = 24 * 3600;

const subscriptionOptions = {
  account: { type: 'string', default: 'demo' },
  plan: { type: 'string', default: 'basic-monthly' },
  subscription: { type: 'string' },
  customer: { type: 'string' },
  livemode: { type: 'boolean', default: false },
} satisfies NonNullable<ParseArgsConfig['options']>;

const subscriptionHelp = [
  '--account ID       the account the subscription belongs to (default: demo)',
  '--plan ID          a plan of config/catalog/plans.json (default: basic-monthly)',
  '--subscription sub_…  the subscription (default: a new one)',
  '--customer cus_…   its Stripe customer (default: a new one)',
  '--livemode         mark the objects and events as live mode',
];

const invoiceHelp = [
  ...subscriptionHelp.map((line) =>
    line.startsWith('--subscription')
      ? '--subscription sub_…  the subscription the invoice bills (required)'
      : line,
  ),
  '--month N          the billing period, in months after the first (default: 1)',
  '--invoice in_…     the invoice ID (default: a new one)',
];

/** The plan, the subscription and its customer the flags name. */
function subscriptionFrom(values: Values, needExisting: boolean) {
  const planId = required(values, 'plan');
  const catalog = loadPlanCatalog();
  const plan = catalog.plans.find((candidate) => candidate.id === planId);
  if (!plan) {
    throw new UsageError(
      `plan ${planId} is not in the catalog (${catalog.plans.map((known) => known.id).join(', ')})`,
    );
  }
  const subscriptionId = needExisting ? required(values, 'subscription') : text(values, 'subscription');
  if (subscriptionId !== undefined && !/^sub_\w+$/.test(subscriptionId)) {
    throw new UsageError(`--subscription must look like sub_…, got ${subscriptionId}`);
  }
  return {
    plan,
    subscriptionId: subscriptionId ?? stripeId('sub'),
    customerId: text(values, 'customer') ?? stripeId('cus'),
    livemode: values.livemode === true,
  };
}

/** An invoice of the subscription for the period `month` months after its first one. */
function planInvoice(values: Values, month: number, status: 'paid' | 'open') {
  const { plan, subscriptionId, customerId, livemode } = subscriptionFrom(values, month > 0);
  const id = text(values, 'invoice');
  return invoice({
    ...(id ? { id } : {}),
    customerId,
    subscriptionId,
    priceId: plan.stripePriceId,
    amount: plan.priceCents,
    currency: plan.currency,
    billingReason: month === 0 ? 'subscription_create' : 'subscription_cycle',
    status,
    periodStart: Math.floor(Date.now() / 1000) + month * 30 * DAY,
    livemode,
  });
}

/** The flags that name the same subscription in a follow-up command. */
function subscriptionFlags(named: {
  plan: { id: string };
  subscriptionId: string;
  customerId: string;
}): string {
  return `--plan ${named.plan.id} --subscription ${named.subscriptionId} --customer ${named.customerId}`;
}

function monthFrom(values: Values): number {
  const month = text(values, 'month') ?? '1';
  if (!/^\d+$/.test(month)) throw new UsageError(`--month is a whole number, got ${month}`);
  return Number(month);
}

const once = (event: StripeEvent): Delivery => ({ event, copies: 1 });

function millisecondsFrom(values: Values, name: string): number {
  const value = text(values, name) ?? '0';
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} is in milliseconds, got ${value}`);
  return Number(value);
}

/** The refund and dispute commands for a payment, printed after it. */
function paymentFollowUps(object: Record<string, unknown>): string[] {
  const paymentIntent = object.payment_intent ?? paymentIntentOfInvoice(object);
  const amount = object.amount_total ?? object.amount_paid;
  if (typeof paymentIntent !== 'string' || typeof amount !== 'number') return [];
  const payment = `--payment-intent ${paymentIntent} --amount ${amount}`;
  return [
    `refund it:  npm run send-event -- refund ${payment} --refunded ${amount}`,
    `dispute it: npm run send-event -- dispute ${payment} --close won`,
  ];
}

function paymentIntentOfInvoice(object: Record<string, unknown>): unknown {
  const payments = object.payments as
    { data?: Array<{ payment?: { payment_intent?: unknown } }> } | undefined;
  return payments?.data?.[0]?.payment?.payment_intent;
}

const paymentOptions = {
  'payment-intent': { type: 'string' },
  amount: { type: 'string' },
  currency: { type: 'string', default: 'usd' },
  charge: { type: 'string' },
  livemode: { type: 'boolean', default: false },
} satisfies NonNullable<ParseArgsConfig['options']>;

const paymentHelp = [
  '--payment-intent pi_…  the payment intent of the purchase or invoice (required; `purchase` prints it)',
  '--amount CENTS     what the charge was for, in minor units (required)',
  '--currency CODE    (default: usd)',
  '--charge ch_…      the charge (default: a new one; give the same one to every refund of a charge)',
  '--livemode         mark the objects and events as live mode',
];

function paymentFrom(values: Values) {
  const paymentIntentId = required(values, 'payment-intent');
  required(values, 'amount');
  if (!/^pi_\w+$/.test(paymentIntentId)) throw new UsageError(`--payment-intent must look like pi_…`);
  return {
    paymentIntentId,
    amount: positiveInteger(values, 'amount', 0),
    currency: required(values, 'currency'),
    chargeId: text(values, 'charge') ?? stripeId('ch'),
    livemode: values.livemode === true,
  };
}

/** The `checkout-failed` and `checkout-expired` commands: a payment-mode session that never pays. */
function closedCheckout(type: string, summary: string): Subcommand {
  return {
    summary,
    help: sessionHelp,
    options: sessionOptions,
    build(values, catalog) {
      const session = sessionFrom(values, catalog, 'unpaid');
      return { sessionId: session.id as string, deliveries: [once(sessionEvent(type, session))] };
    },
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
        notes: paymentFollowUps(session),
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

  'checkout-failed': closedCheckout(
    'checkout.session.async_payment_failed',
    'checkout.session.async_payment_failed: the purchase is marked failed, the customer told',
  ),

  'checkout-expired': closedCheckout(
    'checkout.session.expired',
    'checkout.session.expired: the purchase is marked expired, nothing granted',
  ),

  subscribe: {
    summary:
      'a new subscription: checkout (subscription mode), customer.subscription.created, invoice.paid, ' +
      'invoice.payment_succeeded: one period is credited, once',
    help: [...subscriptionHelp, '--times N          copies of each event, sent concurrently (default: 1)'],
    options: { ...subscriptionOptions, times: { type: 'string', default: '1' } },
    build(values) {
      const { plan, subscriptionId, customerId, livemode } = subscriptionFrom(values, false);
      const copies = positiveInteger(values, 'times', 1);
      const session = checkoutSession({
        accountId: required(values, 'account'),
        mode: 'subscription',
        subscriptionId,
        customerId,
        amountTotal: plan.priceCents,
        currency: plan.currency,
        livemode,
      });
      const started = subscription({
        id: subscriptionId,
        customerId,
        priceId: plan.stripePriceId,
        unitAmount: plan.priceCents,
        currency: plan.currency,
        livemode,
      });
      const first = planInvoice({ ...values, subscription: subscriptionId, customer: customerId }, 0, 'paid');
      const events = [
        sessionEvent('checkout.session.completed', session),
        stripeEvent('customer.subscription.created', started, { livemode }),
        stripeEvent('invoice.paid', first, { livemode }),
        stripeEvent('invoice.payment_succeeded', first, { livemode }),
      ];
      const same = subscriptionFlags({ plan, subscriptionId, customerId });
      return {
        sessionId: null,
        deliveries: events.map((event) => ({ event, copies })),
        notes: [
          `renew it:   npm run send-event -- renew ${same} --month 1`,
          `cancel it:  npm run send-event -- subscription-cancel ${same}`,
          ...paymentFollowUps(first),
        ],
      };
    },
  },

  renew: {
    summary:
      'invoice.paid and invoice.payment_succeeded for a later period: its credits (without rollover, the unused ones expire)',
    help: invoiceHelp,
    options: { ...subscriptionOptions, month: { type: 'string' }, invoice: { type: 'string' } },
    build(values) {
      const renewal = planInvoice(values, monthFrom(values), 'paid');
      const livemode = values.livemode === true;
      return {
        sessionId: null,
        deliveries: [
          once(stripeEvent('invoice.paid', renewal, { livemode })),
          once(stripeEvent('invoice.payment_succeeded', renewal, { livemode })),
        ],
        notes: paymentFollowUps(renewal),
      };
    },
  },

  'invoice-failed': {
    summary: 'invoice.payment_failed for a later period: the dunning email, once per invoice',
    help: [...invoiceHelp, '--attempt N        the attempt that failed (default: 1)'],
    options: {
      ...subscriptionOptions,
      month: { type: 'string' },
      invoice: { type: 'string' },
      attempt: { type: 'string', default: '1' },
    },
    build(values) {
      const month = monthFrom(values);
      const failed = { ...planInvoice(values, month, 'open') };
      failed.attempt_count = positiveInteger(values, 'attempt', 1);
      const same = subscriptionFlags(subscriptionFrom(values, true));
      return {
        sessionId: null,
        deliveries: [
          once(stripeEvent('invoice.payment_failed', failed, { livemode: values.livemode === true })),
        ],
        notes: [
          `paid after all: npm run send-event -- renew ${same} --month ${month} --invoice ${failed.id}`,
        ],
      };
    },
  },

  'subscription-update': {
    summary: 'customer.subscription.updated: the plan and status are kept, newest state wins',
    help: [
      ...invoiceHelp.filter((line) => !/^--(month|invoice)/.test(line)),
      '--status STATUS    active, past_due, unpaid, paused… (default: active)',
      '--age SECONDS      make the event this much older (an out-of-order delivery; default: 0)',
    ],
    options: {
      ...subscriptionOptions,
      status: { type: 'string', default: 'active' },
      age: { type: 'string', default: '0' },
    },
    build(values) {
      const { plan, subscriptionId, customerId, livemode } = subscriptionFrom(values, true);
      const age = text(values, 'age') ?? '0';
      if (!/^\d+$/.test(age)) throw new UsageError(`--age is in seconds, got ${age}`);
      const state = subscription({
        id: subscriptionId,
        customerId,
        priceId: plan.stripePriceId,
        unitAmount: plan.priceCents,
        status: required(values, 'status'),
        livemode,
      });
      const created = Math.floor(Date.now() / 1000) - Number(age);
      return {
        sessionId: null,
        deliveries: [once(stripeEvent('customer.subscription.updated', state, { livemode, created }))],
      };
    },
  },

  'subscription-cancel': {
    summary: 'customer.subscription.deleted: the subscription ends, the customer is told once',
    help: invoiceHelp.filter((line) => !/^--(month|invoice)/.test(line)),
    options: subscriptionOptions,
    build(values) {
      const { plan, subscriptionId, customerId, livemode } = subscriptionFrom(values, true);
      const ended = subscription({
        id: subscriptionId,
        customerId,
        priceId: plan.stripePriceId,
        unitAmount: plan.priceCents,
        status: 'canceled',
        livemode,
      });
      return {
        sessionId: null,
        deliveries: [once(stripeEvent('customer.subscription.deleted', ended, { livemode }))],
      };
    },
  },

  refund: {
    summary: 'charge.refunded: credits revoked in proportion to the cumulative amount refunded',
    help: [
      ...paymentHelp,
      '--refunded CENTS   amount_refunded: everything refunded on the charge so far (default: --amount)',
    ],
    options: { ...paymentOptions, refunded: { type: 'string' } },
    build(values) {
      const payment = paymentFrom(values);
      const refunded = positiveInteger(values, 'refunded', payment.amount);
      const refundedCharge = charge({ id: payment.chargeId, ...payment, amountRefunded: refunded });
      const next =
        refunded < payment.amount
          ? [
              `refund more: npm run send-event -- refund --payment-intent ${payment.paymentIntentId} --amount ${payment.amount} --charge ${payment.chargeId} --refunded ${payment.amount}`,
            ]
          : [];
      return {
        sessionId: null,
        deliveries: [once(stripeEvent('charge.refunded', refundedCharge, { livemode: payment.livemode }))],
        notes: next,
      };
    },
  },

  dispute: {
    summary:
      'charge.dispute.created (credits revoked), then with --close charge.dispute.closed (won restores them)',
    help: [
      ...paymentHelp,
      '--close OUTCOME    then close it: won or lost (default: leave it open)',
      '--delay MS         wait this long before closing it (default: 0)',
    ],
    options: { ...paymentOptions, close: { type: 'string' }, delay: { type: 'string', default: '0' } },
    build(values) {
      const payment = paymentFrom(values);
      const close = text(values, 'close');
      if (close !== undefined && close !== 'won' && close !== 'lost') {
        throw new UsageError(`--close is won or lost, got ${close}`);
      }
      const id = stripeId('dp');
      const object = (status: string) => dispute({ id, ...payment, status });
      const livemode = payment.livemode;
      const deliveries = [
        once(stripeEvent('charge.dispute.created', object('needs_response'), { livemode })),
      ];
      if (close) {
        deliveries.push({
          ...once(stripeEvent('charge.dispute.closed', object(close), { livemode })),
          delayMs: millisecondsFrom(values, 'delay'),
        });
      }
      return { sessionId: null, deliveries };
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
  for (const note of plan.notes ?? []) process.stdout.write(`${note}\n`);
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
