import { formatAmount, sessionPage } from '../../scripts/local-stripe/checkout-page';
import {
  completedSessionObject,
  HostedCheckout,
  redirectUrl,
  sessionFromRequest,
} from '../../scripts/local-stripe/hosted-checkout';
import { creditsCheckoutRequest } from '../../stripe/checkout-sessions';
import { summarizeCheckoutSession } from '../../stripe/objects';

/**
 * The local Stripe's checkout, without a browser or a webhook: what it reads from the service's
 * own creation request, what its pages show, and the session its events carry.
 */

/** The form the SDK sends for the service's checkout request, as Stripe (and the local Stripe) reads it. */
function creationForm(overrides: { productName?: string; packId?: string | null } = {}): URLSearchParams {
  const { params } = creditsCheckoutRequest({
    accountId: 'acct_1',
    packId: overrides.packId === undefined ? 'growth' : overrides.packId,
    credits: 550,
    amountCents: 4500,
    currency: 'usd',
    productName: overrides.productName ?? 'Growth pack',
    payer: { email: 'buyer@example.com' },
    saveCard: false,
    successUrl: 'https://app.example.com/ok?session={CHECKOUT_SESSION_ID}',
    cancelUrl: 'https://app.example.com/billing',
    idempotencyKey: 'checkout:acct_1:1',
  });
  // Stripe's form encoding: nested keys in brackets, as the SDK writes them.
  const form = new URLSearchParams();
  const add = (prefix: string, value: unknown): void => {
    if (value === undefined || value === null) return;
    if (typeof value === 'object') {
      for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
        add(prefix ? `${prefix}[${key}]` : key, inner);
      }
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      form.append(prefix, String(value));
    }
  };
  add('', params);
  return form;
}

describe('the local checkout', () => {
  it('when the service creates a session, then the page shows its product, credits and price, and its event is one the service can read', () => {
    const session = sessionFromRequest('cs_test_page1', creationForm());
    const html = sessionPage(session);
    expect(html).toContain('<h1 id="product">Growth pack</h1>');
    expect(html).toContain('<dd id="credits">550 credits</dd>');
    expect(html).toContain('<p class="price" id="price">$45.00</p>');
    expect(html).toMatch(/<button type="submit" id="pay" class="primary">Pay \$45\.00<\/button>/);

    session.paymentIntentId = 'pi_page1';
    expect(summarizeCheckoutSession(completedSessionObject(session, 'paid'))).toEqual({
      id: 'cs_test_page1',
      mode: 'payment',
      paymentStatus: 'paid',
      amountTotal: 4500,
      currency: 'usd',
      livemode: false,
      accountId: 'acct_1',
      // The local Stripe puts the account in the metadata too, as the service's sessions do.
      metadataAccountId: 'acct_1',
      packId: 'growth',
      claimedCredits: '550',
      customerId: null,
      customerEmail: 'buyer@example.com',
      paymentIntentId: 'pi_page1',
      subscriptionId: null,
    });
  });

  it('when a product name holds markup, then the page shows it as text', () => {
    const session = sessionFromRequest(
      'cs_test_page2',
      creationForm({ productName: '<script>x()</script>' }),
    );
    const html = sessionPage(session);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;x()&lt;/script&gt;');
  });

  it('when amounts are in other currencies, then each is shown in its own minor units', () => {
    expect(formatAmount(958, 'usd')).toBe('$9.58');
    expect(formatAmount(500, 'jpy')).toBe('¥500');
    expect(formatAmount(1234, 'eur')).toBe('€12.34');
  });

  it('when a success URL holds {CHECKOUT_SESSION_ID}, then the redirect fills it in as Stripe does', () => {
    expect(redirectUrl('https://app.example.com/ok?session={CHECKOUT_SESSION_ID}', 'cs_test_1')).toBe(
      'https://app.example.com/ok?session=cs_test_1',
    );
    expect(redirectUrl('https://app.example.com/ok', 'cs_test_1')).toBe('https://app.example.com/ok');
  });

  it('when a session is not a one-off payment, or unknown, then its actions are refused and nothing is sent', async () => {
    const sent: string[] = [];
    const checkout = new HostedCheckout(
      () => null,
      (event) => sent.push(event.type),
      () => {},
    );
    const form = creationForm();
    form.set('mode', 'subscription');
    checkout.add(sessionFromRequest('cs_test_sub', form));
    await expect(checkout.act('cs_test_sub', 'pay')).resolves.toMatchObject({ kind: 'refused' });
    await expect(checkout.act('cs_test_nope', 'pay')).resolves.toMatchObject({ kind: 'refused' });
    expect(sent).toEqual([]);
  });

  it('when a session is declined, then it redirects to the cancel URL, sends nothing, and can still be paid once', async () => {
    const published: string[] = [];
    const checkout = new HostedCheckout(
      () => null,
      (event) => published.push(event.type),
      () => {},
    );
    checkout.add(sessionFromRequest('cs_test_decline', creationForm({ packId: null })));
    await expect(checkout.act('cs_test_decline', 'decline')).resolves.toEqual({
      kind: 'redirect',
      url: 'https://app.example.com/billing',
    });
    expect(published).toEqual([]);
    const paid = { kind: 'redirect', url: 'https://app.example.com/ok?session=cs_test_decline' };
    await expect(checkout.act('cs_test_decline', 'pay')).resolves.toEqual(paid);
    await expect(checkout.act('cs_test_decline', 'pay')).resolves.toEqual(paid);
    expect(published).toEqual(['checkout.session.completed']);
    expect(checkout.get('cs_test_decline')?.state).toBe('paid');
  });
});
