import { redirectUrl, type HostedSession } from './hosted-checkout';

/**
 * The local Stripe's web pages: a session's checkout page (pay, pay later, decline), the page of
 * a payment in progress (the delayed method's two outcomes), a completed session's, and a neutral
 * page to return to. Plain HTML forms, no script: each button posts to the session's path and the
 * answer redirects, as Stripe's hosted page does.
 */

const escape = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (character) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[character] ?? character,
  );

/** An amount in minor units in its currency's own format: 4500 usd → $45.00, 500 jpy → ¥500. */
export function formatAmount(amount: number, currency: string): string {
  try {
    const format = new Intl.NumberFormat('en-US', { style: 'currency', currency: currency.toUpperCase() });
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
    return format.format(amount / 10 ** digits);
  } catch {
    return `${amount} ${currency} (minor units)`;
  }
}

const STYLE = `
  body { font-family: system-ui, sans-serif; background: #f6f8fa; color: #1a1f36; margin: 0; }
  main { max-width: 28rem; margin: 3rem auto; background: #fff; border-radius: 8px; padding: 2rem;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  .test { display: inline-block; background: #ffde92; color: #5c3b00; border-radius: 4px;
          padding: .1rem .5rem; font-size: .8rem; font-weight: 600; }
  .price { font-size: 2rem; font-weight: 600; margin: .5rem 0 1.5rem; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .4rem 1rem; }
  dt { color: #697386; }
  form { margin: .5rem 0; }
  button { width: 100%; padding: .7rem; border-radius: 6px; border: 1px solid #c1c9d2;
           background: #fff; font-size: 1rem; cursor: pointer; }
  button.primary { background: #635bff; border-color: #635bff; color: #fff; }
  .events { font-size: .85rem; color: #3c4257; }
  .note { font-size: .85rem; color: #697386; }`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>${STYLE}</style>
</head>
<body><main>
<p><span class="test">TEST MODE</span> Local Stripe: nothing is charged.</p>
${body}
</main></body>
</html>
`;
}

function button(sessionId: string, action: string, label: string, primary = false): string {
  const path = `/c/pay/${encodeURIComponent(sessionId)}/${action}`;
  return `<form method="post" action="${escape(path)}"><button type="submit" id="${action}"${
    primary ? ' class="primary"' : ''
  }>${escape(label)}</button></form>`;
}

function summary(session: HostedSession): string {
  const price = formatAmount(session.amountTotal, session.currency);
  const what = session.packId ? `Pack <code>${escape(session.packId)}</code>` : 'Custom amount';
  return `<h1 id="product">${escape(session.productName)}</h1>
<p class="price" id="price">${escape(price)}</p>
<dl>
<dt>What</dt><dd id="kind">${what}</dd>
${session.credits === null ? '' : `<dt>Credits</dt><dd id="credits">${escape(Number(session.credits).toLocaleString('en-US'))} credits</dd>`}
<dt>Email</dt><dd>${escape(session.email ?? '(the customer’s)')}</dd>
<dt>Session</dt><dd><code>${escape(session.id)}</code></dd>
</dl>`;
}

function sentEvents(session: HostedSession): string {
  if (session.sent.length === 0) return '';
  const items = session.sent.map(({ event, status, answer }) => {
    const outcome = status === 0 ? `not delivered: ${answer}` : `webhook answered ${status}`;
    return `<li><code>${escape(event.type)}</code> <code>${escape(event.id)}</code>: ${escape(outcome)}</li>`;
  });
  return `<div class="events"><p>Events sent to the webhook:</p><ul>${items.join('')}</ul></div>`;
}

const STATE_TEXT: Record<HostedSession['state'], string> = {
  open: 'Open',
  processing: 'Payment processing',
  paid: 'Paid',
  async_succeeded: 'Payment succeeded',
  async_failed: 'Payment failed',
};

/** The page of a session, as its state has it. */
export function sessionPage(session: HostedSession): string {
  const price = formatAmount(session.amountTotal, session.currency);
  const back = (label: string) =>
    `<p><a id="back" href="${escape(redirectUrl(session.successUrl, session.id))}">${escape(label)}</a></p>`;
  if (session.mode !== 'payment') {
    return page(
      'Checkout',
      `${summary(session)}<p>This local checkout page sells one-off payments only (mode payment), not mode ${escape(session.mode)}.</p>`,
    );
  }
  switch (session.state) {
    case 'open':
      return page(
        `Pay ${price}`,
        `${summary(session)}
${button(session.id, 'pay', `Pay ${price}`, true)}
${button(session.id, 'pay-later', 'Pay later (bank transfer: a delayed method)')}
${button(session.id, 'decline', 'Decline and go back')}
<p class="note">Paying sends <code>checkout.session.completed</code> (paid) to the webhook and returns to the success URL.
Paying later sends it unpaid, and the payment's outcome later. Declining returns to the cancel URL and sends nothing.</p>`,
      );
    case 'processing':
      return page(
        'Payment processing',
        `<h2 id="state">${STATE_TEXT.processing}</h2>
${summary(session)}
<p>The bank transfer has not arrived yet: Stripe has sent <code>checkout.session.completed</code> with
<code>payment_status</code> unpaid, and sends the outcome when the bank settles. Settle it now:</p>
${button(session.id, 'payment-succeeds', 'The payment arrives', true)}
${button(session.id, 'payment-fails', 'The payment fails')}
${sentEvents(session)}
${back('Back to the shop (the success URL)')}`,
      );
    default:
      return page(
        STATE_TEXT[session.state],
        `<h2 id="state">${STATE_TEXT[session.state]}</h2>
${summary(session)}
${sentEvents(session)}
${back('Back to the shop (the success URL)')}`,
      );
  }
}

export function notFoundPage(what: string): string {
  return page('Not found', `<h2>Not found</h2><p>${escape(what)}</p>`);
}

export function refusedPage(reason: string): string {
  return page('Refused', `<h2>Refused</h2><p>${escape(reason)}</p>`);
}

/**
 * A neutral place to return to from checkout in development, standing in for the client's own
 * success and cancel pages: `?session_id={CHECKOUT_SESSION_ID}` shows where that session is.
 */
export function returnPage(session: HostedSession | undefined, canceled: boolean): string {
  const heading = canceled ? 'Checkout canceled' : 'Back from checkout';
  const detail = session
    ? `${summary(session)}<p id="state">${STATE_TEXT[session.state]}</p>${sentEvents(session)}`
    : '';
  return page(
    heading,
    `<h2>${heading}</h2>
<p class="note">This page stands in for your app's own success and cancel pages.</p>
${detail}`,
  );
}

/** The sessions created here, newest first, each a link to its page. */
export function indexPage(sessions: HostedSession[]): string {
  const items = [...sessions]
    .reverse()
    .map(
      (session) =>
        `<li><a href="/c/pay/${encodeURIComponent(session.id)}">${escape(session.productName)}</a>, ${escape(
          formatAmount(session.amountTotal, session.currency),
        )}: ${STATE_TEXT[session.state]}</li>`,
    );
  return page(
    'Local Stripe',
    `<h2>Checkout sessions</h2>
<ul>${items.join('') || '<li>none yet</li>'}</ul>
<p class="note">Stripe's API, for the SDK, is under <code>/v1/</code>; a session's <code>url</code> opens its page.</p>`,
  );
}
