import {
  checkoutSession,
  DAY,
  invoice,
  nowSeconds,
  stripeEvent,
  stripeId,
  subscription,
} from '../../stripe/fixtures/index';
import { sessionEvent } from './checkout';
import {
  once,
  positiveInteger,
  required,
  text,
  UsageError,
  wholeNumber,
  type Catalogs,
  type Options,
  type Subcommand,
  type Values,
} from './options';
import { paymentFollowUps } from './payments';

/** The customer.subscription.* and invoice.* commands: a plan subscribed to, renewed, unpaid, ended. */

const subscriptionOptions = {
  account: { type: 'string', default: 'demo' },
  plan: { type: 'string', default: 'basic-monthly' },
  subscription: { type: 'string' },
  customer: { type: 'string' },
  livemode: { type: 'boolean', default: false },
} satisfies Options;

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

/** The help of a command that names an existing subscription, without the invoice's lines. */
const existingSubscriptionHelp = invoiceHelp.filter((line) => !/^--(month|invoice)/.test(line));

/** The plan, the subscription and its customer the flags name. */
function subscriptionFrom(values: Values, { plans }: Catalogs, needExisting: boolean) {
  const planId = required(values, 'plan');
  const plan = plans.find((candidate) => candidate.id === planId);
  if (!plan) {
    throw new UsageError(
      `plan ${planId} is not in the catalog (${plans.map((known) => known.id).join(', ')})`,
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

type NamedSubscription = ReturnType<typeof subscriptionFrom>;

/** The subscription the flags name, in the given status, as customer.subscription.* events carry it. */
function planSubscription(named: NamedSubscription, status?: string) {
  return subscription({
    id: named.subscriptionId,
    customerId: named.customerId,
    priceId: named.plan.stripePriceId,
    unitAmount: named.plan.priceCents,
    currency: named.plan.currency,
    ...(status === undefined ? {} : { status }),
    livemode: named.livemode,
  });
}

/** An invoice of the subscription for the period `month` months after its first one. */
function planInvoice(values: Values, catalogs: Catalogs, month: number, status: 'paid' | 'open') {
  const { plan, subscriptionId, customerId, livemode } = subscriptionFrom(values, catalogs, month > 0);
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
    periodStart: nowSeconds() + month * 30 * DAY,
    livemode,
    // Stripe's events leave `payments` out, and the dev stack has no Stripe API to ask which
    // invoice a payment intent paid: a refund or dispute sent next finds its invoice this way.
    includePayments: true,
  });
}

/** The flags that name the same subscription in a follow-up command. */
function subscriptionFlags(named: NamedSubscription): string {
  return `--plan ${named.plan.id} --subscription ${named.subscriptionId} --customer ${named.customerId}`;
}

const monthFrom = (values: Values) => wholeNumber(values, 'month', 1, 'is a whole number');

export const subscribeCommand: Subcommand = {
  summary:
    'a new subscription: checkout (subscription mode), customer.subscription.created, invoice.paid, ' +
    'invoice.payment_succeeded: one period is credited, once',
  help: [...subscriptionHelp, '--times N          copies of each event, sent concurrently (default: 1)'],
  options: { ...subscriptionOptions, times: { type: 'string', default: '1' } },
  build(values, catalogs) {
    const named = subscriptionFrom(values, catalogs, false);
    const { plan, subscriptionId, customerId, livemode } = named;
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
    const first = planInvoice(
      { ...values, subscription: subscriptionId, customer: customerId },
      catalogs,
      0,
      'paid',
    );
    const events = [
      sessionEvent('checkout.session.completed', session),
      stripeEvent('customer.subscription.created', planSubscription(named), { livemode }),
      stripeEvent('invoice.paid', first, { livemode }),
      stripeEvent('invoice.payment_succeeded', first, { livemode }),
    ];
    const same = subscriptionFlags(named);
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
};

export const renewCommand: Subcommand = {
  summary:
    'invoice.paid and invoice.payment_succeeded for a later period: its credits (without rollover, the unused ones expire)',
  help: invoiceHelp,
  options: { ...subscriptionOptions, month: { type: 'string' }, invoice: { type: 'string' } },
  build(values, catalogs) {
    const renewal = planInvoice(values, catalogs, monthFrom(values), 'paid');
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
};

export const invoiceFailedCommand: Subcommand = {
  summary: 'invoice.payment_failed for a later period: the dunning email, once per invoice',
  help: [...invoiceHelp, '--attempt N        the attempt that failed (default: 1)'],
  options: {
    ...subscriptionOptions,
    month: { type: 'string' },
    invoice: { type: 'string' },
    attempt: { type: 'string', default: '1' },
  },
  build(values, catalogs) {
    const month = monthFrom(values);
    const failed = { ...planInvoice(values, catalogs, month, 'open') };
    failed.attempt_count = positiveInteger(values, 'attempt', 1);
    const same = subscriptionFlags(subscriptionFrom(values, catalogs, true));
    return {
      sessionId: null,
      deliveries: [
        once(stripeEvent('invoice.payment_failed', failed, { livemode: values.livemode === true })),
      ],
      notes: [`paid after all: npm run send-event -- renew ${same} --month ${month} --invoice ${failed.id}`],
    };
  },
};

export const subscriptionUpdateCommand: Subcommand = {
  summary: 'customer.subscription.updated: the plan and status are kept, newest state wins',
  help: [
    ...existingSubscriptionHelp,
    '--status STATUS    active, past_due, unpaid, paused… (default: active)',
    '--age SECONDS      make the event this much older (an out-of-order delivery; default: 0)',
  ],
  options: {
    ...subscriptionOptions,
    status: { type: 'string', default: 'active' },
    age: { type: 'string', default: '0' },
  },
  build(values, catalogs) {
    const named = subscriptionFrom(values, catalogs, true);
    const age = wholeNumber(values, 'age', 0, 'is in seconds');
    const state = planSubscription(named, required(values, 'status'));
    const created = nowSeconds() - age;
    return {
      sessionId: null,
      deliveries: [
        once(stripeEvent('customer.subscription.updated', state, { livemode: named.livemode, created })),
      ],
    };
  },
};

export const subscriptionCancelCommand: Subcommand = {
  summary: 'customer.subscription.deleted: the subscription ends, the customer is told once',
  help: existingSubscriptionHelp,
  options: subscriptionOptions,
  build(values, catalogs) {
    const named = subscriptionFrom(values, catalogs, true);
    const ended = planSubscription(named, 'canceled');
    return {
      sessionId: null,
      deliveries: [once(stripeEvent('customer.subscription.deleted', ended, { livemode: named.livemode }))],
    };
  },
};
