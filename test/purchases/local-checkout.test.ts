import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'puppeteer-core';
import { LOCAL_STRIPE_SECRET_KEY } from '../../scripts/local-stripe/decision';
import { StripeStandIn } from '../../scripts/local-stripe/stand-in';
import { BROWSER_SETUP_TIMEOUT_MS, launchBrowser, type HeadlessBrowser } from '../support/browser';
import { balanceOf, purchaseRow } from '../support/db';
import { startHarness, WEBHOOK_SECRET, type Harness } from '../support/harness';
import { waitUntil } from '../support/wait';

/**
 * A client backend's "Buy credits" button, tried locally as `npm run dev` runs it: the API's
 * Stripe client points at the local Stripe, the session's URL opens its checkout page, and a real
 * headless Chromium clicks through it to the shop's pages, the balance and the emails.
 */

/** The client's own web app: it serves the success and cancel pages checkout returns to. */
async function startShop(): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Shop</title><h1>Shop</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the local checkout page, in a browser', () => {
  let stripe: StripeStandIn;
  let shop: Awaited<ReturnType<typeof startShop>>;
  let h: Harness;
  let chromium: HeadlessBrowser;
  let page: Page;

  beforeAll(async () => {
    // First, as it may install Chromium (apt) on a fresh machine.
    chromium = await launchBrowser();
    stripe = await StripeStandIn.start();
    shop = await startShop();
    h = await startHarness({
      configOverrides: {
        STRIPE_SECRET_KEY: LOCAL_STRIPE_SECRET_KEY,
        STRIPE_API_BASE_URL: stripe.url,
        CHECKOUT_ALLOWED_REDIRECT_HOSTS: '127.0.0.1',
      },
    });
    stripe.sendWebhooksTo({ url: `${h.baseUrl}/webhooks/stripe`, secret: WEBHOOK_SECRET });
  }, BROWSER_SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await chromium?.close();
    await h?.close();
    await shop?.close();
    await stripe?.stop();
  });
  beforeEach(async () => {
    page = await chromium.browser.newPage();
  });
  afterEach(async () => {
    await page?.close();
  });

  /** A checkout session for a new account, as a client backend asks for one. */
  async function checkout(sale: { packId: string } | { credits: number }) {
    const account = await h.newAccount();
    const response = await h.api('POST', '/v1/checkout/sessions', {
      accountId: account.id,
      ...sale,
      successUrl: `${shop.url}/billing/success?session_id={CHECKOUT_SESSION_ID}`,
      cancelUrl: `${shop.url}/billing`,
    });
    expect(response.status).toBe(201);
    return { account, session: response.body as { id: string; url: string } };
  }

  // Runs in the page; typed here by hand, as the project's TypeScript has no DOM library.
  const text = (selector: string) =>
    page.$eval(selector, (element: { textContent: string | null }) => element.textContent?.trim());

  /** Clicks a button of the page and waits for the page it leads to. */
  async function click(selector: string): Promise<void> {
    await Promise.all([page.waitForNavigation(), page.click(selector)]);
  }

  const sentTypes = (sessionId: string) =>
    stripe.hostedSession(sessionId)?.sent.map(({ event, status }) => `${event.type} ${status}`);

  const purchaseStatus = async (sessionId: string) => (await purchaseRow(h.sql, sessionId))?.status;

  it("when the customer pays, then the browser lands on the success URL, Stripe's signed event for that session is accepted, and the credits and the receipt follow", async () => {
    const { account, session } = await checkout({ packId: 'growth' });
    expect(session.url).toBe(`${stripe.url}/c/pay/${session.id}`);

    await page.goto(session.url);
    expect(await text('#product')).toBe('Growth pack');
    expect(await text('#kind')).toBe('Pack growth');
    expect(await text('#credits')).toBe('550 credits');
    expect(await text('#price')).toBe('$45.00');
    await click('#pay');
    expect(page.url()).toBe(`${shop.url}/billing/success?session_id=${session.id}`);

    const [sent, ...more] = stripe.hostedSession(session.id)?.sent ?? [];
    expect(more).toEqual([]);
    expect(sent?.status).toBe(200);
    expect(sent?.event).toMatchObject({
      id: expect.stringMatching(/^evt_/),
      object: 'event',
      type: 'checkout.session.completed',
      livemode: false,
      data: {
        object: {
          id: session.id,
          object: 'checkout.session',
          mode: 'payment',
          status: 'complete',
          payment_status: 'paid',
          amount_total: 4500,
          currency: 'usd',
          client_reference_id: account.id,
          customer_email: account.email,
          metadata: { accountId: account.id, packId: 'growth', credits: '550', purpose: 'credits' },
          payment_intent: expect.stringMatching(/^pi_/),
          livemode: false,
        },
      },
    });

    await waitUntil(async () => (await balanceOf(h.sql, account.id)) === 550, { what: 'the credits' });
    expect(await purchaseStatus(session.id)).toBe('completed');
    const [receipt] = await h.smtp.waitForMail(account.email);
    expect(receipt?.subject).toBe('Receipt: 550 credits added to your account');

    // The page again, and Pay again: the session is paid once, and nothing more is sent.
    await page.goto(session.url);
    expect(await text('#state')).toBe('Paid');
    expect(await page.$('#pay')).toBeNull();
    const again = await fetch(`${session.url}/pay`, { method: 'POST', redirect: 'manual' });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe(`${shop.url}/billing/success?session_id=${session.id}`);
    expect(sentTypes(session.id)).toEqual(['checkout.session.completed 200']);
  });

  it('when the customer declines a custom amount, then the browser lands on the cancel URL and nothing is sent or credited', async () => {
    const { account, session } = await checkout({ credits: 250 });

    await page.goto(session.url);
    expect(await text('#kind')).toBe('Custom amount');
    expect(await text('#credits')).toBe('250 credits');
    expect(await text('#price')).toBe('$22.50');
    await click('#decline');

    expect(page.url()).toBe(`${shop.url}/billing`);
    expect(sentTypes(session.id)).toEqual([]);
    expect(await balanceOf(h.sql, account.id)).toBe(0);
    expect(await purchaseRow(h.sql, session.id)).toBeNull();
  });

  it('when the customer pays later and the payment arrives, then the purchase awaits payment uncredited, and is credited once it arrives', async () => {
    const { account, session } = await checkout({ packId: 'starter' });

    await page.goto(session.url);
    await click('#pay-later');
    expect(await text('#state')).toBe('Payment processing');
    expect(sentTypes(session.id)).toEqual(['checkout.session.completed 200']);
    await waitUntil(async () => (await purchaseStatus(session.id)) === 'awaiting_payment', {
      what: 'the purchase to await its payment',
    });
    expect(await balanceOf(h.sql, account.id)).toBe(0);

    await click('#payment-succeeds');
    expect(await text('#state')).toBe('Payment succeeded');
    const sent = stripe.hostedSession(session.id)?.sent ?? [];
    expect(sentTypes(session.id)).toEqual([
      'checkout.session.completed 200',
      'checkout.session.async_payment_succeeded 200',
    ]);
    // The same session and payment throughout, unpaid and then paid.
    expect(sent.map(({ event }) => event.data.object.payment_status)).toEqual(['unpaid', 'paid']);
    expect(new Set(sent.map(({ event }) => event.data.object.payment_intent)).size).toBe(1);
    expect(sent.every(({ event }) => event.data.object.id === session.id)).toBe(true);

    await waitUntil(async () => (await balanceOf(h.sql, account.id)) === 100, { what: 'the credits' });
    expect(await purchaseStatus(session.id)).toBe('completed');
    const [receipt] = await h.smtp.waitForMail(account.email);
    expect(receipt?.subject).toBe('Receipt: 100 credits added to your account');
  });

  it('when the customer pays later and the payment fails, then nothing is credited and the customer is told', async () => {
    const { account, session } = await checkout({ packId: 'starter' });

    await page.goto(session.url);
    await click('#pay-later');
    await click('#payment-fails');
    expect(await text('#state')).toBe('Payment failed');
    expect(sentTypes(session.id)).toEqual([
      'checkout.session.completed 200',
      'checkout.session.async_payment_failed 200',
    ]);

    await waitUntil(async () => (await purchaseStatus(session.id)) === 'payment_failed', {
      what: 'the purchase to be marked failed',
    });
    const [notice] = await h.smtp.waitForMail(account.email);
    expect(notice?.subject).toBe('Your payment did not go through');
    expect(await balanceOf(h.sql, account.id)).toBe(0);
  });
});
