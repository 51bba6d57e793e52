import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stripeId } from '../../stripe/fixtures/index';
import { indexPage, notFoundPage, refusedPage, returnPage, sessionPage } from './checkout-page';
import {
  HostedCheckout,
  sessionFromRequest,
  type CheckoutAction,
  type HostedSession,
  type SentEvent,
  type WebhookTarget,
} from './hosted-checkout';
import { startStripeMock, type StripeMock } from './stripe-mock';

export interface ReceivedRequest {
  method: string;
  path: string;
  idempotencyKey: string | null;
  /** The form fields exactly as Stripe receives them, e.g. `line_items[0][price_data][unit_amount]`. */
  form: Record<string, string>;
}

/** An answer of the stand-in: Stripe's JSON by default, a page or a redirect for the checkout pages. */
interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface StandInOptions {
  /** 0 (the default): a free port. */
  port?: number;
  /** 127.0.0.1 unless told otherwise. */
  host?: string;
  /** Where paying on a checkout page sends its events; also settable later (`sendWebhooksTo`). */
  webhook?: WebhookTarget;
  /** One line per checkout page action and event sent. */
  log?: (line: string) => void;
}

/** What the checkout pages' buttons post to: `/c/pay/<session>/<action>`. */
const CHECKOUT_ACTIONS: ReadonlySet<string> = new Set<CheckoutAction>([
  'pay',
  'pay-later',
  'decline',
  'payment-succeeds',
  'payment-fails',
]);

/** Never a live key: the local Stripe answers every request that carries one with an error. */
const LIVE_KEY = /^Bearer (sk|rk)_live_/;

/**
 * Stripe's hosted API cannot be reached here, so the official SDK is pointed at this local
 * server. Every request is first validated by Stripe's own stripe-mock (which checks it against
 * Stripe's OpenAPI description); this stand-in then adds the state stripe-mock lacks: unique
 * session IDs, Stripe's idempotency-key semantics, a log of what was received, and injected errors.
 * Given a webhook, it is also Stripe's hosted Checkout: the URL of a session it creates opens a
 * checkout page here, and paying sends Stripe's events to the webhook (./hosted-checkout.ts).
 * `npm run dev` runs it as its local Stripe (./main.ts); the tests start their own.
 */
export class StripeStandIn {
  readonly requests: ReceivedRequest[] = [];
  private readonly byIdempotencyKey = new Map<string, { form: string; status: number; body: string }>();
  /** The invoice each payment intent paid, as Stripe's invoice payments API reports it. */
  private readonly invoiceByPaymentIntent = new Map<string, string>();
  private injected: { status: number; body: unknown; times: number } | null = null;
  /** Payment intents created, by ID, as Stripe would answer a retrieval. */
  private readonly paymentIntents = new Map<string, Record<string, unknown>>();
  /** How the next off-session confirmations end; once empty, they succeed. */
  private readonly offSessionOutcomes: OffSessionOutcome[] = [];
  /** Events Stripe's Events API lists (`GET /v1/events`), in the order they were published. */
  private readonly events: Record<string, unknown>[] = [];
  private eventListFailure: { afterPages: number; status: number; body: unknown; times: number } | null =
    null;
  private webhook: WebhookTarget | null;
  private readonly checkout: HostedCheckout;

  private constructor(
    private readonly server: Server,
    private readonly mock: StripeMock,
    options: StandInOptions,
  ) {
    this.webhook = options.webhook ?? null;
    this.checkout = new HostedCheckout(
      () => this.webhook,
      (event) => this.publishEvent(event),
      options.log ?? (() => {}),
    );
  }

  static async start(options: StandInOptions = {}): Promise<StripeStandIn> {
    const mock = await startStripeMock();
    let standIn: StripeStandIn | null = null;
    const server = createServer((req, res) => {
      if (!standIn) return void res.socket?.destroy();
      const answer = isPagePath(req.url) ? standIn.handlePage(req) : standIn.handle(req);
      answer
        .then(({ status, body, headers }) => {
          // Status 0: the connection drops unanswered, as when Stripe cannot be reached.
          if (status === 0) return void res.socket?.destroy();
          res.writeHead(
            status,
            headers ?? { 'content-type': 'application/json', 'request-id': stripeId('req') },
          );
          res.end(body);
        })
        .catch((error: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { type: 'api_error', message: error.message } }));
        });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
      });
    } catch (error) {
      await mock.stop();
      throw error;
    }
    standIn = new StripeStandIn(server, mock, options);
    return standIn;
  }

  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /**
   * From now on, the sessions created open a checkout page here (their `url`), and paying sends
   * Stripe's events to this webhook; null: sessions get Stripe's own URL, and no page sends.
   */
  sendWebhooksTo(target: WebhookTarget | null): void {
    this.webhook = target;
  }

  /** A checkout session created here, as its page shows it, with the events it sent. */
  hostedSession(id: string): HostedSession | undefined {
    return this.checkout.get(id);
  }

  /** Every event the checkout pages sent to the webhook, with its answer, oldest first. */
  sentEvents(): SentEvent[] {
    return this.checkout.all().flatMap((session) => session.sent);
  }

  /** The next `times` requests are answered with this Stripe error instead of reaching stripe-mock. */
  failNext(status: number, error: { type: string; code?: string; message: string }, times = 1): void {
    this.injected = { status, body: { error }, times };
  }

  /** From now on, `GET /v1/events` lists this event (as Stripe does for 30 days). */
  publishEvent(event: { id: string; created: number }): void {
    this.events.push(event);
  }

  /** Stripe forgets every event published so far. */
  clearEvents(): void {
    this.events.length = 0;
  }

  /**
   * After `afterPages` more pages of events are served, the next `times` event lists fail with
   * `status` (0: the connection is dropped unanswered), until `restoreEventLists()`.
   */
  failEventListsAfter(
    afterPages: number,
    status: number,
    error: { type: string; message: string },
    times = 1,
  ): void {
    this.eventListFailure = { afterPages, status, body: { error }, times };
  }

  restoreEventLists(): void {
    this.eventListFailure = null;
  }

  /** The `GET /v1/events` requests received, with their query parameters. */
  eventListRequests(): URLSearchParams[] {
    return this.requests
      .map((request) => new URL(request.path, this.url))
      .filter((url) => url.pathname === '/v1/events')
      .map((url) => url.searchParams);
  }

  /** The next confirmed payment intents end this way, in order (then they succeed again). */
  nextOffSessionPayments(...outcomes: OffSessionOutcome[]): void {
    this.offSessionOutcomes.push(...outcomes);
  }

  /** The payment intents created with `metadata[topupId]` = `topupId`, as Stripe holds them. */
  paymentIntentsOfTopup(topupId: string): Record<string, unknown>[] {
    return [...this.paymentIntents.values()].filter(
      (intent) => (intent.metadata as Record<string, string> | undefined)?.topupId === topupId,
    );
  }

  paymentIntentCreations(): ReceivedRequest[] {
    return this.requests.filter(
      (request) => request.method === 'POST' && request.path === '/v1/payment_intents',
    );
  }

  /** From now on, Stripe knows that `paymentIntentId` paid `invoiceId`. */
  recordInvoicePayment(paymentIntentId: string, invoiceId: string): void {
    this.invoiceByPaymentIntent.set(paymentIntentId, invoiceId);
  }

  /** The requests that asked which invoice `paymentIntentId` paid. */
  invoicePaymentLookups(paymentIntentId: string): ReceivedRequest[] {
    return this.requests.filter((request) => {
      const url = new URL(request.path, this.url);
      return (
        request.method === 'GET' &&
        url.pathname === '/v1/invoice_payments' &&
        url.searchParams.get('payment[payment_intent]') === paymentIntentId
      );
    });
  }

  checkoutCreations(): ReceivedRequest[] {
    return this.requests.filter(
      (request) => request.method === 'POST' && request.path === '/v1/checkout/sessions',
    );
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.mock.stop();
  }

  /** stripe-mock lists one fixture; answer with the payment the test recorded, if any. */
  private invoicePaymentList(query: URLSearchParams, fixture: { data: Record<string, unknown>[] }): string {
    const paymentIntentId = query.get('payment[payment_intent]') ?? '';
    const invoiceId = this.invoiceByPaymentIntent.get(paymentIntentId);
    const data = invoiceId
      ? [
          {
            ...fixture.data[0],
            id: stripeId('inpay'),
            invoice: invoiceId,
            livemode: false,
            payment: { type: 'payment_intent', payment_intent: paymentIntentId },
            status: 'paid',
          },
        ]
      : [];
    return JSON.stringify({ ...fixture, data, has_more: false });
  }

  /**
   * Stripe's list of events: newest first; `created[gte|gt|lte|lt]`, `types[]` (at most 20),
   * `limit` (1–100, default 10), `starting_after` (older than) and `ending_before` (newer than).
   */
  private eventList(query: URLSearchParams): { status: number; body: string } {
    const failure = this.eventListFailure;
    if (failure && failure.afterPages <= 0) {
      if (--failure.times === 0) this.eventListFailure = null;
      return { status: failure.status, body: JSON.stringify(failure.body) };
    }
    if (failure) failure.afterPages -= 1;
    const types = [...query.entries()].filter(([name]) => /^types\[\d*\]$/.test(name)).map(([, v]) => v);
    const bound = (op: string) => (query.has(`created[${op}]`) ? Number(query.get(`created[${op}]`)) : null);
    const [gte, gt, lte, lt] = [bound('gte'), bound('gt'), bound('lte'), bound('lt')];
    const invalid = (message: string) => ({
      status: 400,
      body: JSON.stringify({ error: { type: 'invalid_request_error', message } }),
    });
    if (types.length > 20) return invalid('types: at most 20 event types');
    const limit = Number(query.get('limit') ?? 10);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) return invalid('limit: between 1 and 100');
    const newestFirst = this.events
      .map((event, order) => ({ event, order }))
      .filter(({ event }) => {
        const created = event.created as number;
        return (
          (types.length === 0 || types.includes(event.type as string)) &&
          (gte === null || created >= gte) &&
          (gt === null || created > gt) &&
          (lte === null || created <= lte) &&
          (lt === null || created < lt)
        );
      })
      .sort((a, b) => (b.event.created as number) - (a.event.created as number) || b.order - a.order)
      .map(({ event }) => event);
    const after = query.get('starting_after');
    const before = query.get('ending_before');
    let page: Record<string, unknown>[];
    let hasMore: boolean;
    if (before) {
      const index = newestFirst.findIndex((event) => event.id === before);
      const newer = index < 0 ? [] : newestFirst.slice(0, index);
      page = newer.slice(Math.max(0, newer.length - limit));
      hasMore = newer.length > limit;
    } else {
      const index = after ? newestFirst.findIndex((event) => event.id === after) : -1;
      const older = after ? (index < 0 ? [] : newestFirst.slice(index + 1)) : newestFirst;
      page = older.slice(0, limit);
      hasMore = older.length > limit;
    }
    return {
      status: 200,
      body: JSON.stringify({ object: 'list', url: '/v1/events', has_more: hasMore, data: page }),
    };
  }

  /** The checkout pages: GET shows a session, POST is one of its buttons; `/return` and `/` too. */
  private async handlePage(req: IncomingMessage): Promise<Answer> {
    for await (const _chunk of req) {
      // A button's form has no fields: the action is in the path.
    }
    const url = new URL(req.url ?? '/', this.url);
    const html = (status: number, body: string): Answer => ({
      status,
      body,
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
    });
    const redirect = (location: string): Answer => ({
      status: 303,
      body: '',
      headers: { location, 'cache-control': 'no-store' },
    });
    if (url.pathname === '/return') {
      const session = this.checkout.get(url.searchParams.get('session_id') ?? '');
      return html(200, returnPage(session, url.searchParams.has('canceled')));
    }
    if (url.pathname === '/') return html(200, indexPage(this.checkout.all()));
    const [, sessionId = '', action] = /^\/c\/pay\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname) ?? [];
    const session = this.checkout.get(decodeURIComponent(sessionId));
    if (!session) return html(404, notFoundPage(`There is no checkout session ${sessionId} here.`));
    const pagePath = `/c/pay/${encodeURIComponent(session.id)}`;
    if (action === undefined && req.method === 'GET') return html(200, sessionPage(session));
    if (action === undefined || req.method !== 'POST' || !CHECKOUT_ACTIONS.has(action)) {
      return html(405, refusedPage('A checkout page is read with GET; its buttons post to it.'));
    }
    const result = await this.checkout.act(session.id, action as CheckoutAction);
    if (result.kind === 'refused') return html(409, refusedPage(result.reason));
    return redirect(result.kind === 'redirect' ? result.url : pagePath);
  }

  private async handle(req: IncomingMessage): Promise<Answer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString();
    const idempotencyKey = (req.headers['idempotency-key'] as string | undefined) ?? null;
    this.requests.push({
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      idempotencyKey,
      form: Object.fromEntries(new URLSearchParams(raw)),
    });

    if (LIVE_KEY.test(req.headers.authorization ?? '')) {
      return {
        status: 401,
        body: JSON.stringify({
          error: {
            type: 'invalid_request_error',
            message: 'This is a local Stripe for development: it never takes a live-mode key.',
          },
        }),
      };
    }
    if (this.injected) {
      const { status, body } = this.injected;
      if (--this.injected.times === 0) this.injected = null;
      return { status, body: JSON.stringify(body) };
    }
    // Stripe's idempotency: the same key replays the first answer; other parameters are an error.
    const earlier = idempotencyKey ? this.byIdempotencyKey.get(idempotencyKey) : undefined;
    if (earlier) {
      if (earlier.form !== raw) {
        return {
          status: 400,
          body: JSON.stringify({
            error: {
              type: 'idempotency_error',
              message:
                'Keys for idempotent requests can only be used with the same parameters they were first used with.',
            },
          }),
        };
      }
      return { status: earlier.status, body: earlier.body };
    }

    const validated = await fetch(`${this.mock.url}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers: {
        authorization: req.headers.authorization ?? '',
        'content-type': req.headers['content-type'] ?? 'application/x-www-form-urlencoded',
        // The API version the SDK pins: the shapes asked for are that version's.
        ...(req.headers['stripe-version'] ? { 'stripe-version': String(req.headers['stripe-version']) } : {}),
      },
      ...(raw ? { body: raw } : {}),
    });
    let body = await validated.text();
    if (validated.ok && req.method === 'POST' && req.url === '/v1/checkout/sessions') {
      // stripe-mock answers a fixed fixture; make it the session this request created.
      const fixture = JSON.parse(body) as Record<string, unknown>;
      const session = sessionFromRequest(stripeId('cs_test'), new URLSearchParams(raw));
      this.checkout.add(session);
      // Its page is here when paying can reach a webhook; otherwise the URL is Stripe's own.
      const url = this.webhook
        ? `${this.url}/c/pay/${session.id}`
        : `https://checkout.stripe.com/c/pay/${session.id}`;
      body = JSON.stringify({
        ...fixture,
        id: session.id,
        url,
        mode: session.mode,
        client_reference_id: session.clientReferenceId,
        livemode: false,
        amount_subtotal: session.amountTotal,
        amount_total: session.amountTotal,
        currency: session.currency,
        customer: session.customer,
        customer_email: session.email,
        metadata: session.metadata,
        success_url: session.successUrl,
        cancel_url: session.cancelUrl,
        created: session.created,
        expires_at: session.created + 24 * 3600,
        status: 'open',
        payment_status: 'unpaid',
        payment_intent: null,
      });
    }
    if (validated.ok && req.method === 'GET' && new URL(req.url ?? '/', this.url).pathname === '/v1/events') {
      return this.eventList(new URL(req.url ?? '/', this.url).searchParams);
    }
    if (validated.ok && req.method === 'POST' && req.url === '/v1/customers') {
      body = JSON.stringify({
        ...(JSON.parse(body) as Record<string, unknown>),
        id: stripeId('cus'),
        livemode: false,
      });
    }
    if (validated.ok && req.method === 'POST' && req.url === '/v1/payment_intents') {
      const answer = this.confirmPaymentIntent(
        JSON.parse(body) as Record<string, unknown>,
        new URLSearchParams(raw),
      );
      if (idempotencyKey) this.byIdempotencyKey.set(idempotencyKey, { form: raw, ...answer });
      return answer;
    }
    const retrieved = /^\/v1\/payment_intents\/(pi_\w+)$/.exec(req.url ?? '')?.[1];
    if (validated.ok && req.method === 'GET' && retrieved && this.paymentIntents.has(retrieved)) {
      body = JSON.stringify(this.paymentIntents.get(retrieved));
    }
    if (validated.ok && req.method === 'GET' && req.url?.startsWith('/v1/invoice_payments?')) {
      body = this.invoicePaymentList(
        new URL(req.url, this.url).searchParams,
        JSON.parse(body) as { data: Record<string, unknown>[] },
      );
    }
    if (idempotencyKey)
      this.byIdempotencyKey.set(idempotencyKey, { form: raw, status: validated.status, body });
    return { status: validated.status, body };
  }

  /**
   * A created payment intent, confirmed as the next outcome says: succeeded (amount received in
   * full), or a card error (HTTP 402) carrying the payment intent, as Stripe answers an off-session
   * confirmation that needs the customer or is declined.
   */
  private confirmPaymentIntent(
    fixture: Record<string, unknown>,
    form: URLSearchParams,
  ): { status: number; body: string } {
    const outcome = this.offSessionOutcomes.shift() ?? 'succeeded';
    const amount = Number(form.get('amount'));
    const metadata = Object.fromEntries(
      [...form.entries()]
        .map(([key, value]) => [/^metadata\[(.+)\]$/.exec(key)?.[1], value] as const)
        .filter((entry): entry is [string, string] => entry[0] !== undefined),
    );
    const failure =
      outcome === 'succeeded'
        ? null
        : outcome === 'authentication_required'
          ? {
              code: 'authentication_required',
              decline_code: 'authentication_required',
              message: 'Your card was declined. This transaction requires authentication.',
            }
          : { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' };
    const intent = {
      ...fixture,
      id: stripeId('pi'),
      amount,
      amount_received: failure ? 0 : amount,
      currency: form.get('currency'),
      customer: form.get('customer'),
      payment_method: form.get('payment_method'),
      metadata,
      livemode: false,
      status: failure ? 'requires_payment_method' : 'succeeded',
      last_payment_error: failure ? { type: 'card_error', ...failure } : null,
    };
    this.paymentIntents.set(intent.id, intent);
    if (!failure) return { status: 200, body: JSON.stringify(intent) };
    return {
      status: 402,
      body: JSON.stringify({ error: { type: 'card_error', ...failure, payment_intent: intent } }),
    };
  }
}

export type OffSessionOutcome = 'succeeded' | 'authentication_required' | 'card_declined';

/** The paths of pages, not of Stripe's API (which is all under /v1/). */
function isPagePath(path: string | undefined): boolean {
  const pathname = new URL(path ?? '/', 'http://local').pathname;
  return pathname === '/' || pathname === '/return' || pathname.startsWith('/c/');
}
