import { checkoutSession, stripeEvent, type StripeEvent } from '../../stripe/fixtures/index';
import {
  once,
  positiveInteger,
  required,
  text,
  UsageError,
  wholeNumber,
  type Catalogs,
  type Delivery,
  type Options,
  type Subcommand,
  type Values,
} from './options';
import { paymentFollowUps } from './payments';

/** The checkout.session.* commands: pack purchases, paid at once, later, never, or many times over. */

const sessionOptions = {
  account: { type: 'string', default: 'demo' },
  pack: { type: 'string', default: 'starter' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  credits: { type: 'string' },
  session: { type: 'string' },
  livemode: { type: 'boolean', default: false },
} satisfies Options;

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
  { packs }: Catalogs,
  paymentStatus: 'paid' | 'unpaid',
): Record<string, unknown> {
  const packId = required(values, 'pack');
  const pack = packs.find((candidate) => candidate.id === packId);
  const amountText = text(values, 'amount');
  if (!pack && amountText === undefined) {
    throw new UsageError(
      `pack ${packId} is not in the catalog (${packs.map((known) => known.id).join(', ')}); ` +
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

export function sessionEvent(type: string, session: Record<string, unknown>): StripeEvent {
  return stripeEvent(type, session, { livemode: session.livemode === true });
}

/** The `checkout-failed` and `checkout-expired` commands: a payment-mode session that never pays. */
function closedCheckout(type: string, summary: string): Subcommand {
  return {
    summary,
    help: sessionHelp,
    options: sessionOptions,
    build(values, catalogs) {
      const session = sessionFrom(values, catalogs, 'unpaid');
      return { sessionId: session.id as string, deliveries: [once(sessionEvent(type, session))] };
    },
  };
}

export const purchaseCommand: Subcommand = {
  summary: 'checkout.session.completed, paid: the pack is credited',
  help: sessionHelp,
  options: sessionOptions,
  build(values, catalogs) {
    const session = sessionFrom(values, catalogs, 'paid');
    return {
      sessionId: session.id as string,
      deliveries: [once(sessionEvent('checkout.session.completed', session))],
      notes: paymentFollowUps(session),
    };
  },
};

export const purchaseDelayedCommand: Subcommand = {
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
  build(values, catalogs) {
    const unpaid = sessionFrom(values, catalogs, 'unpaid');
    const deliveries: Delivery[] = [once(sessionEvent('checkout.session.completed', unpaid))];
    const then = values['then-succeed'] === true;
    if (then) {
      deliveries.push({
        ...once(
          sessionEvent('checkout.session.async_payment_succeeded', { ...unpaid, payment_status: 'paid' }),
        ),
        delayMs: wholeNumber(values, 'delay', 0, 'is in milliseconds'),
      });
    }
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
};

export const asyncSucceededCommand: Subcommand = {
  summary: 'checkout.session.async_payment_succeeded for a session sent earlier as unpaid (same options)',
  help: sessionHelp.map((line) =>
    line.startsWith('--session') ? '--session cs_…     the session that completed unpaid (required)' : line,
  ),
  options: sessionOptions,
  build(values, catalogs) {
    required(values, 'session');
    const session = sessionFrom(values, catalogs, 'paid');
    return {
      sessionId: session.id as string,
      deliveries: [once(sessionEvent('checkout.session.async_payment_succeeded', session))],
    };
  },
};

export const duplicateCommand: Subcommand = {
  summary: 'one paid purchase event delivered N times at once: one run starts, the rest are duplicates',
  help: [...sessionHelp, '--times N          how many copies, sent concurrently (default: 5)'],
  options: { ...sessionOptions, times: { type: 'string', default: '5' } },
  build(values, catalogs) {
    const session = sessionFrom(values, catalogs, 'paid');
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
};

export const checkoutFailedCommand = closedCheckout(
  'checkout.session.async_payment_failed',
  'checkout.session.async_payment_failed: the purchase is marked failed, the customer told',
);

export const checkoutExpiredCommand = closedCheckout(
  'checkout.session.expired',
  'checkout.session.expired: the purchase is marked expired, nothing granted',
);
