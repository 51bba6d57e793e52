import {
  charge,
  checkoutSession,
  dispute,
  invoice,
  nowSeconds,
  stripeEvent,
  stripeId,
  subscription,
} from '../../stripe/fixtures/index';
import { once, required, text, UsageError, type Subcommand, type Values } from './options';

/** The `raw` command: any event type, with a given object or a minimal one of the matching kind. */

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

/**
 * Objects of routed event types are validated too: send whole ones (the most specific prefix
 * first). The service validates every checkout.session.* object it routes, so that is a whole one.
 */
const WHOLE_OBJECTS: Array<
  [typePrefix: string, build: (options: { livemode: boolean }) => Record<string, unknown>]
> = [
  ['checkout.session.', (options) => checkoutSession({ paymentStatus: 'unpaid', ...options })],
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
  const livemode = values.livemode === true;
  const whole = WHOLE_OBJECTS.find(([prefix]) => type.startsWith(prefix));
  if (whole) return whole[1]({ livemode });
  const [, object, idPrefix] = OBJECT_KINDS.find(([prefix]) => type.startsWith(prefix)) ?? [
    '',
    type.split('.').slice(0, -1).join('.') || type,
    'obj',
  ];
  return { id: stripeId(idPrefix), object, created: nowSeconds(), livemode, metadata: {} };
}

export const rawCommand: Subcommand = {
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
      deliveries: [once(stripeEvent(type, object, { livemode: values.livemode === true }))],
    };
  },
};
