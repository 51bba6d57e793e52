import { charge, dispute, stripeEvent, stripeId } from '../../stripe/fixtures/index';
import {
  once,
  positiveInteger,
  required,
  text,
  UsageError,
  wholeNumber,
  type Options,
  type Subcommand,
  type Values,
} from './options';

/** The charge.* commands: a purchase's or an invoice's payment refunded or disputed. */

const paymentOptions = {
  'payment-intent': { type: 'string' },
  amount: { type: 'string' },
  currency: { type: 'string', default: 'usd' },
  charge: { type: 'string' },
  livemode: { type: 'boolean', default: false },
} satisfies Options;

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

/** The refund and dispute commands for a payment (a checkout session or an invoice), printed after it. */
export function paymentFollowUps(object: Record<string, unknown>): string[] {
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

export const refundCommand: Subcommand = {
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
};

export const disputeCommand: Subcommand = {
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
    const deliveries = [once(stripeEvent('charge.dispute.created', object('needs_response'), { livemode }))];
    if (close) {
      deliveries.push({
        ...once(stripeEvent('charge.dispute.closed', object(close), { livemode })),
        delayMs: wholeNumber(values, 'delay', 0, 'is in milliseconds'),
      });
    }
    return { sessionId: null, deliveries };
  },
};
