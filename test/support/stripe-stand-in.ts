import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, stopProcess, waitForPort } from '../../scripts/local-services';
import { findStripeMock } from '../../scripts/stripe-mock';
import { stripeId } from '../../stripe-fixtures';

export interface ReceivedRequest {
  method: string;
  path: string;
  idempotencyKey: string | null;
  /** The form fields exactly as Stripe receives them, e.g. `line_items[0][price_data][unit_amount]`. */
  form: Record<string, string>;
}

/**
 * Stripe's hosted API cannot be reached here, so the official SDK is pointed at this local
 * server. Every request is first validated by Stripe's own stripe-mock (which checks it against
 * Stripe's OpenAPI description); this stand-in then adds the state stripe-mock lacks: unique
 * session IDs, Stripe's idempotency-key semantics, a log of what was received, and injected errors.
 */
export class StripeStandIn {
  readonly requests: ReceivedRequest[] = [];
  private readonly byIdempotencyKey = new Map<string, { form: string; status: number; body: string }>();
  /** The invoice each payment intent paid, as Stripe's invoice payments API reports it. */
  private readonly invoiceByPaymentIntent = new Map<string, string>();
  private injected: { status: number; body: unknown; times: number } | null = null;

  private constructor(
    private readonly server: Server,
    private readonly mock: ChildProcess,
    private readonly mockUrl: string,
  ) {}

  static async start(): Promise<StripeStandIn> {
    const mockPort = await freePort();
    // stripe-mock also serves HTTPS, on a fixed port unless told otherwise: give it a free one too.
    const mock = spawn(
      findStripeMock(),
      ['-http-addr', `127.0.0.1:${mockPort}`, '-https-addr', `127.0.0.1:${await freePort()}`],
      { stdio: 'ignore' },
    );
    await waitForPort(mockPort, 30_000);
    let standIn: StripeStandIn | null = null;
    const server = createServer((req, res) => {
      standIn
        ?.handle(req)
        .then(({ status, body }) => {
          res.writeHead(status, { 'content-type': 'application/json', 'request-id': stripeId('req') });
          res.end(body);
        })
        .catch((error: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { type: 'api_error', message: error.message } }));
        });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    standIn = new StripeStandIn(server, mock, `http://127.0.0.1:${mockPort}`);
    return standIn;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next `times` requests are answered with this Stripe error instead of reaching stripe-mock. */
  failNext(status: number, error: { type: string; code?: string; message: string }, times = 1): void {
    this.injected = { status, body: { error }, times };
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
    await stopProcess(this.mock);
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

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
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

    const validated = await fetch(`${this.mockUrl}${req.url ?? '/'}`, {
      method: req.method ?? 'GET',
      headers: {
        authorization: req.headers.authorization ?? '',
        'content-type': req.headers['content-type'] ?? 'application/x-www-form-urlencoded',
      },
      ...(raw ? { body: raw } : {}),
    });
    let body = await validated.text();
    if (validated.ok && req.method === 'POST' && req.url === '/v1/checkout/sessions') {
      // stripe-mock answers a fixed fixture; make it the session this request created.
      const session = JSON.parse(body) as Record<string, unknown>;
      const id = stripeId('cs_test');
      const form = new URLSearchParams(raw);
      body = JSON.stringify({
        ...session,
        id,
        url: `https://checkout.stripe.com/c/pay/${id}`,
        mode: form.get('mode'),
        client_reference_id: form.get('client_reference_id'),
        livemode: false,
      });
    }
    if (validated.ok && req.method === 'GET' && req.url?.startsWith('/v1/invoice_payments?')) {
      body = this.invoicePaymentList(new URL(req.url, this.url).searchParams, JSON.parse(body));
    }
    if (idempotencyKey)
      this.byIdempotencyKey.set(idempotencyKey, { form: raw, status: validated.status, body });
    return { status: validated.status, body };
  }
}
