import {
  checkoutSession,
  deliverEvent,
  nowSeconds,
  stripeEvent,
  stripeId,
  type StripeEvent,
} from '../../stripe/fixtures/index';

/**
 * Stripe's hosted Checkout, as the local Stripe plays it: the sessions created through the API,
 * and what the customer does on their page. Paying, paying later and the later outcome of a
 * delayed payment each send the event Stripe sends, signed, to the webhook, with the session as
 * Stripe holds it then (built on stripe/fixtures, so every field the service reads is there).
 */

/** Where Stripe delivers events: the service's webhook, and the secret it verifies them with. */
export interface WebhookTarget {
  url: string;
  secret: string;
}

/**
 * `open`: not paid yet (a declined checkout stays open, as on Stripe). `processing`: completed
 * with a delayed method, the money not arrived. Then `paid`, `async_succeeded` or `async_failed`.
 */
export type CheckoutState = 'open' | 'processing' | 'paid' | 'async_succeeded' | 'async_failed';

/** One event sent for a session, and how the webhook answered it (`status` 0: unreachable). */
export interface SentEvent {
  event: StripeEvent;
  status: number;
  answer: string;
}

/** A session as the customer sees it on the page. */
export interface HostedSession {
  id: string;
  state: CheckoutState;
  mode: string;
  productName: string;
  /** The credits and the pack named in the session's metadata (the page shows them; nothing trusts them). */
  credits: string | null;
  packId: string | null;
  amountTotal: number;
  currency: string;
  email: string | null;
  clientReferenceId: string | null;
  customer: string | null;
  metadata: Record<string, string>;
  /** As the client sent them; `{CHECKOUT_SESSION_ID}` is filled in only when redirecting. */
  successUrl: string;
  cancelUrl: string;
  created: number;
  paymentIntentId: string | null;
  sent: SentEvent[];
}

/** Stripe's form fields under `prefix[…]`, e.g. `metadata[packId]` → `{ packId }`. */
function nested(form: URLSearchParams, prefix: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const pattern = new RegExp(`^${prefix.replace(/[[\]]/g, '\\$&')}\\[([^\\]]+)\\]$`);
  for (const [key, value] of form) {
    const name = pattern.exec(key)?.[1];
    if (name !== undefined) fields[name] = value;
  }
  return fields;
}

/** The sum of the line items' `price_data` amounts, as Stripe computes `amount_total` (no tax, no discount). */
function lineItems(form: URLSearchParams): { amountTotal: number; currency: string; name: string } {
  let amountTotal = 0;
  let currency = '';
  const names: string[] = [];
  for (let index = 0; form.has(`line_items[${index}][quantity]`); index += 1) {
    const item = (field: string) => form.get(`line_items[${index}]${field}`) ?? '';
    amountTotal += Number(item('[price_data][unit_amount]')) * Number(item('[quantity]'));
    currency ||= item('[price_data][currency]');
    names.push(item('[price_data][product_data][name]'));
  }
  return { amountTotal, currency, name: names.join(', ') };
}

/** What the client asked for, read from the session's creation request as Stripe reads it. */
export function sessionFromRequest(id: string, form: URLSearchParams): HostedSession {
  const metadata = nested(form, 'metadata');
  const { amountTotal, currency, name } = lineItems(form);
  return {
    id,
    state: 'open',
    mode: form.get('mode') ?? 'payment',
    productName: name,
    credits: metadata.credits ?? null,
    packId: metadata.packId ?? null,
    amountTotal,
    currency,
    email: form.get('customer_email'),
    clientReferenceId: form.get('client_reference_id'),
    customer: form.get('customer'),
    metadata,
    successUrl: form.get('success_url') ?? '',
    cancelUrl: form.get('cancel_url') ?? '',
    created: nowSeconds(),
    paymentIntentId: null,
    sent: [],
  };
}

/** Stripe fills the literal `{CHECKOUT_SESSION_ID}` of a success URL with the session's ID. */
export function redirectUrl(template: string, sessionId: string): string {
  return template
    .replaceAll('{CHECKOUT_SESSION_ID}', sessionId)
    .replaceAll('%7BCHECKOUT_SESSION_ID%7D', sessionId);
}

/** The session as Stripe holds it once completed (`status` complete), in the webhook's API version. */
export function completedSessionObject(
  session: HostedSession,
  paymentStatus: 'paid' | 'unpaid',
): Record<string, unknown> {
  const fixture = checkoutSession({
    id: session.id,
    amountTotal: session.amountTotal,
    currency: session.currency,
    paymentStatus,
    mode: 'payment',
    livemode: false,
  });
  return {
    ...fixture,
    amount_subtotal: session.amountTotal,
    amount_total: session.amountTotal,
    cancel_url: session.cancelUrl,
    client_reference_id: session.clientReferenceId,
    created: session.created,
    customer: session.customer,
    customer_details: {
      ...(fixture.customer_details as Record<string, unknown>),
      email: session.email ?? 'customer@example.com',
    },
    customer_email: session.email,
    expires_at: session.created + 24 * 3600,
    livemode: false,
    metadata: session.metadata,
    payment_intent: session.paymentIntentId,
    payment_status: paymentStatus,
    status: 'complete',
    success_url: session.successUrl,
    url: null,
  };
}

export type CheckoutAction = 'pay' | 'pay-later' | 'decline' | 'payment-succeeds' | 'payment-fails';

/** Where the customer's browser goes after an action: a URL of the client's, or back to the page. */
export type ActionResult =
  { kind: 'redirect'; url: string } | { kind: 'page' } | { kind: 'refused'; reason: string };

const WEBHOOK_ATTEMPTS = 3;
const WEBHOOK_RETRY_MS = 1_000;

export class HostedCheckout {
  private readonly sessions = new Map<string, HostedSession>();

  constructor(
    private readonly target: () => WebhookTarget | null,
    /** Every event sent is also listed by the Events API, as on Stripe. */
    private readonly publish: (event: StripeEvent) => void,
    private readonly log: (line: string) => void,
  ) {}

  add(session: HostedSession): void {
    this.sessions.set(session.id, session);
  }

  get(id: string): HostedSession | undefined {
    return this.sessions.get(id);
  }

  all(): HostedSession[] {
    return [...this.sessions.values()];
  }

  /**
   * What the customer did. Each session completes once: a second click on "Pay" sends nothing
   * more and redirects as the first did; an action the session's state does not allow is refused.
   */
  async act(id: string, action: CheckoutAction): Promise<ActionResult> {
    const session = this.sessions.get(id);
    if (!session) return { kind: 'refused', reason: `no checkout session ${id}` };
    if (session.mode !== 'payment') {
      return {
        kind: 'refused',
        reason: `the checkout pages sell one-off payments only, not mode ${session.mode}`,
      };
    }
    const success = { kind: 'redirect', url: redirectUrl(session.successUrl, session.id) } as const;
    switch (action) {
      case 'decline':
        // Stripe's "back" link: the session stays open (it would expire after a day).
        if (session.state !== 'open') return { kind: 'page' };
        this.log(`checkout ${id} declined: back to the cancel URL, nothing sent`);
        return { kind: 'redirect', url: redirectUrl(session.cancelUrl, session.id) };
      case 'pay':
        if (session.state === 'paid') return success;
        if (session.state !== 'open') return { kind: 'page' };
        session.state = 'paid';
        session.paymentIntentId = stripeId('pi');
        await this.send(session, 'checkout.session.completed', 'paid');
        return success;
      case 'pay-later':
        if (session.state !== 'open') return { kind: 'page' };
        session.state = 'processing';
        session.paymentIntentId = stripeId('pi');
        await this.send(session, 'checkout.session.completed', 'unpaid');
        return { kind: 'page' };
      case 'payment-succeeds':
      case 'payment-fails': {
        if (session.state !== 'processing') return { kind: 'page' };
        const succeeded = action === 'payment-succeeds';
        session.state = succeeded ? 'async_succeeded' : 'async_failed';
        await this.send(
          session,
          succeeded ? 'checkout.session.async_payment_succeeded' : 'checkout.session.async_payment_failed',
          succeeded ? 'paid' : 'unpaid',
        );
        return { kind: 'page' };
      }
    }
  }

  /**
   * Signed with the webhook's secret and delivered as Stripe delivers it; a refusal or an
   * unreachable webhook is tried again twice, then logged (the Events API still lists the event,
   * so reconciliation finds it).
   */
  private async send(session: HostedSession, type: string, paymentStatus: 'paid' | 'unpaid'): Promise<void> {
    const event = stripeEvent(type, completedSessionObject(session, paymentStatus), { livemode: false });
    this.publish(event);
    const target = this.target();
    if (!target) {
      session.sent.push({ event, status: 0, answer: 'no webhook is configured' });
      this.log(`checkout ${session.id}: ${type} ${event.id} not sent: no webhook is configured`);
      return;
    }
    let sent: SentEvent = { event, status: 0, answer: '' };
    for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS; attempt += 1) {
      try {
        const { status, body } = await deliverEvent(target.url, event, target.secret);
        sent = { event, status, answer: typeof body === 'string' ? body : JSON.stringify(body) };
      } catch (error) {
        sent = { event, status: 0, answer: error instanceof Error ? error.message : String(error) };
      }
      if (sent.status >= 200 && sent.status < 300) break;
      if (attempt < WEBHOOK_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, WEBHOOK_RETRY_MS));
    }
    session.sent.push(sent);
    const outcome = sent.status === 0 ? `unreachable (${sent.answer})` : `${sent.status} ${sent.answer}`;
    this.log(`checkout ${session.id}: ${type} ${event.id} → ${target.url}: ${outcome}`);
  }
}
