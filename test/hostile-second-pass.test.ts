import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash, randomUUID } from 'node:crypto';
import { createEmailActivities } from '../activities/email/email';
import type { Mailer } from '../email/mailer';
import { holdCredits } from '../credits/reservations';
import { checkedBalance, grantDirectly, ledgerOf } from './support/billing';
import { API_KEY, startHarness, type Harness } from './support/harness';
import { StripeStandIn } from './support/stripe-stand-in';
import { sleep } from './support/wait';

/**
 * A second pass of hostile callers and unlucky operators over checkout keys, late captures,
 * balances at the edge of a JS number, the text people write, and sweeps running side by side.
 */
describe('hostile inputs and timings, second pass', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness({
      worker: false,
      configOverrides: {
        STRIPE_SECRET_KEY: 'sk_test_standin0123456789',
        STRIPE_API_BASE_URL: stripe.url,
        CHECKOUT_ALLOWED_REDIRECT_HOSTS: 'app.example.com',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await stripe?.stop();
  });

  const funded = async (credits: number) => {
    const account = await h.newAccount();
    await grantDirectly(h.sql, account.id, { key: 'funds', amount: credits });
    return account;
  };

  describe('checkout idempotency keys at their longest', () => {
    const checkout = (accountId: string, key: string, packId = 'starter') =>
      fetch(`${h.baseUrl}/v1/checkout/sessions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${API_KEY}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify({
          accountId,
          packId,
          successUrl: 'https://app.example.com/ok',
          cancelUrl: 'https://app.example.com/cancel',
        }),
      }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));

    async function longestAccount() {
      // 128 characters, with several ":" so the scoped key grows further when escaped.
      const head = `a:${randomUUID()}:b:c:`;
      const id = head + 'x'.repeat(128 - head.length);
      expect(id).toHaveLength(128);
      const created = await h.api('POST', '/v1/accounts', { id, email: `${randomUUID()}@customers.test` });
      expect(created.status).toBe(201);
      return id;
    }
    const longestKey = () => {
      const head = `k-${randomUUID()}-`;
      return head + '~'.repeat(255 - head.length);
    };

    it('when a 128-character account ID and a 255-character key are replayed, then the same session answers and Stripe sees one creation with a key of at most 255 characters', async () => {
      const accountId = await longestAccount();
      const key = longestKey();
      expect(key).toHaveLength(255);

      const first = await checkout(accountId, key);
      expect(first.status).toBe(201);
      const replay = await checkout(accountId, key);
      expect(replay).toEqual({ status: 201, body: first.body });

      const creations = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === accountId);
      expect(creations).toHaveLength(1);
      const escaped = accountId.replaceAll('%', '%25').replaceAll(':', '%3A');
      const scoped = `checkout:${escaped}:${key}`;
      expect(creations[0]?.idempotencyKey).toBe(
        `checkout:sha256:${createHash('sha256').update(scoped).digest('hex')}`,
      );
      expect((creations[0]?.idempotencyKey ?? '').length).toBeLessThanOrEqual(255);
      const [row] = await h.sql<{ idempotency_key: string; account_id: string }[]>`
        SELECT idempotency_key, account_id FROM checkout_sessions WHERE id = ${first.body.id as string}`;
      expect(row).toEqual({ idempotency_key: scoped, account_id: accountId });
    });

    it('when the same longest key comes with another body, then 409 idempotency_key_reused and Stripe is not asked again', async () => {
      const accountId = await longestAccount();
      const key = longestKey();
      expect((await checkout(accountId, key, 'starter')).status).toBe(201);

      const changed = await checkout(accountId, key, 'growth');
      expect(changed.status).toBe(409);
      expect(changed.body.error.code).toBe('idempotency_key_reused');
      const creations = stripe.checkoutCreations().filter((r) => r.form.client_reference_id === accountId);
      expect(creations).toHaveLength(1);
      const [row] = await h.sql<{ n: string }[]>`
        SELECT count(*)::text AS n FROM checkout_sessions WHERE account_id = ${accountId}`;
      expect(row?.n).toBe('1');
    });

    it('when two longest keys differ only in their last character, then each gets its own session and its own Stripe key', async () => {
      const accountId = await longestAccount();
      const key = longestKey();
      const other = `${key.slice(0, -1)}!`;
      const a = await checkout(accountId, key);
      const b = await checkout(accountId, other);
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.body.id).not.toBe(a.body.id);
      const keys = stripe
        .checkoutCreations()
        .filter((r) => r.form.client_reference_id === accountId)
        .map((r) => r.idempotencyKey);
      expect(new Set(keys).size).toBe(2);
    });
  });

  describe('captures at and after the TTL', () => {
    const capture = (accountId: string, reservationId: string) =>
      h.api(
        'POST',
        `/v1/accounts/${accountId}/reservations/${reservationId}/capture`,
        { reason: 'render' },
        API_KEY,
      );

    it('when a hold is captured the moment its TTL is reached, then 409 reservation_settled and nothing is debited', async () => {
      const account = await funded(100);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 3600,
        idempotencyKey: `job-${randomUUID()}`,
      });
      // Its TTL is now: no timer runs in this harness, so only the capture's own check can refuse.
      await h.sql`UPDATE credit_reservations SET expires_at = now() WHERE id = ${reservation.id}`;

      const answer = await capture(account.id, reservation.id);
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('reservation_settled');
      expect(await checkedBalance(h, account.id)).toBe(100);
      expect((await ledgerOf(h, account.id)).filter((e) => e.kind === 'debit')).toEqual([]);
      const [row] = await h.sql<{ status: string; held: string }[]>`
        SELECT r.status, b.held::text AS held FROM credit_reservations r
        JOIN credit_balances b USING (account_id) WHERE r.id = ${reservation.id}`;
      expect(row).toEqual({ status: 'held', held: '40' });
    });

    it('when a hold is captured after its TTL has passed, then 409 reservation_settled and nothing is debited', async () => {
      const account = await funded(100);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 1,
        idempotencyKey: `job-${randomUUID()}`,
      });
      await sleep(1200);
      const answer = await capture(account.id, reservation.id);
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe('reservation_settled');
      expect(await checkedBalance(h, account.id)).toBe(100);
    });

    it('when a captured hold is captured again after its TTL, then the replay answers the same debit and nothing more is taken', async () => {
      const account = await funded(100);
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 3600,
        idempotencyKey: `job-${randomUUID()}`,
      });
      const first = await capture(account.id, reservation.id);
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ status: 'captured', balance: 60 });
      await h.sql`UPDATE credit_reservations SET expires_at = now() - interval '1 minute' WHERE id = ${reservation.id}`;

      const replay = await capture(account.id, reservation.id);
      expect(replay.status).toBe(201);
      expect(replay.body.entryId).toBe(first.body.entryId);
      expect(replay.body.balance).toBe(60);
      expect(await checkedBalance(h, account.id)).toBe(60);
      expect((await ledgerOf(h, account.id)).filter((e) => e.kind === 'debit')).toHaveLength(1);
    });
  });

  describe('balances at the edge of a JS number', () => {
    const grant = (accountId: string, amount: number, idempotencyKey: string) =>
      h.api('POST', `/v1/accounts/${accountId}/grants`, { amount, reason: 'huge', idempotencyKey });

    it('when a grant takes the balance one past 2^53 − 1, then 422 balance_out_of_range and nothing changes', async () => {
      const account = await h.newAccount();
      expect((await grant(account.id, Number.MAX_SAFE_INTEGER - 1, `a-${randomUUID()}`)).status).toBe(201);
      const before = await h.api('GET', `/v1/accounts/${account.id}/grants`);

      const over = await grant(account.id, 2, `b-${randomUUID()}`);
      expect(over.status).toBe(422);
      expect(over.body.error.code).toBe('balance_out_of_range');
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER - 1);
      expect(await h.api('GET', `/v1/accounts/${account.id}/grants`)).toEqual(before);
      expect(await ledgerOf(h, account.id)).toHaveLength(1);

      // Exactly 2^53 − 1 is still a balance the service holds.
      expect((await grant(account.id, 1, `c-${randomUUID()}`)).status).toBe(201);
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);
    });

    it('when the balance sits at 2^53 − 1 and an earlier grant is replayed, then 200 answers the original grant and nothing changes', async () => {
      const account = await h.newAccount();
      const key = `a-${randomUUID()}`;
      const first = await grant(account.id, Number.MAX_SAFE_INTEGER - 5, key);
      expect(first.status).toBe(201);
      expect((await grant(account.id, 5, `b-${randomUUID()}`)).status).toBe(201);
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);

      const replay = await grant(account.id, Number.MAX_SAFE_INTEGER - 5, key);
      expect(replay).toEqual({ status: 200, body: first.body });
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);
      expect(await ledgerOf(h, account.id)).toHaveLength(2);
    });
  });

  describe('the text people write', () => {
    const debit = async (reason: string) => {
      const account = await funded(100);
      const answer = await h.api(
        'POST',
        `/v1/accounts/${account.id}/debits`,
        { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason },
        API_KEY,
      );
      return { account, answer };
    };

    it.each([
      ['a tab', 'render\tframe'],
      ['a newline', 'render\nframe'],
      ['a carriage return', 'render\rframe'],
      ['DEL', 'render\u007fframe'],
      ['a C1 line break (U+0085)', 'render\u0085frame'],
      ['a C1 escape introducer (U+009B)', 'render\u009b[31mframe'],
    ])('when a reason holds %s, then 400 invalid_request and nothing moves', async (_what, reason) => {
      const { account, answer } = await debit(reason);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_request');
      expect(await checkedBalance(h, account.id)).toBe(100);
    });

    it.each([
      ['U+2028 (a line separator, not a control character)', 'render\u2028frame'],
      ['U+202E (a bidi override, a format character)', 'render \u202eemarf'],
      ['emoji (surrogate pairs)', 'render 🎬🎞️ frame 👩🏽‍💻'],
      ['an emoji at the very end', 'done ✅🚀'],
    ])('when a reason holds %s, then it is accepted and stored exactly as sent', async (_what, reason) => {
      const { account, answer } = await debit(reason);
      expect(answer.status).toBe(201);
      expect(answer.body.balance).toBe(95);
      const ledger = await h.api('GET', `/v1/accounts/${account.id}/ledger`);
      const debits = (ledger.body.entries as { kind: string; reason: string }[]).filter(
        (e) => e.kind === 'debit',
      );
      expect(debits.map((e) => e.reason)).toEqual([reason]);
    });

    it('when a reason is 500 characters, then it is accepted; at 501, then 400 and nothing moves', async () => {
      const accepted = await debit('r'.repeat(500));
      expect(accepted.answer.status).toBe(201);
      expect((await ledgerOf(h, accepted.account.id)).find((e) => e.kind === 'debit')?.reason).toBe(
        'r'.repeat(500),
      );

      const refused = await debit('r'.repeat(501));
      expect(refused.answer.status).toBe(400);
      expect(refused.answer.body.error.code).toBe('invalid_request');
      expect(await checkedBalance(h, refused.account.id)).toBe(100);
    });

    it('when a reason is 500 emoji (1,000 UTF-16 units), then it is accepted; at 501 emoji, then 400', async () => {
      expect((await debit('😀'.repeat(500))).answer.status).toBe(201);
      const refused = await debit('😀'.repeat(501));
      expect(refused.answer.status).toBe(400);
      expect(await checkedBalance(h, refused.account.id)).toBe(100);
    });

    it('when a reason is empty, then 400 invalid_request', async () => {
      const { answer } = await debit('');
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_request');
    });
  });

  describe('the outbox sweep', () => {
    it('when two sweeps run at once over the same stale emails, then each email is delivered exactly once', async () => {
      const account = await h.newAccount();
      const prefix = `par-${randomUUID()}`;
      const count = 30;
      // Stale receipts whose workflows are gone: both sweeps see every one of them.
      await h.sql`
        INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id, created_at)
        SELECT ${prefix} || ':' || n, ${account.id}, 'x@customers.test', 's', 'b',
               ${prefix} || '-gone-' || n, now() - interval '50 minutes' + n * interval '1 millisecond'
        FROM generate_series(1, ${count}) AS n`;
      const sent: string[] = [];
      const mailer: Mailer = {
        async send(message) {
          sent.push(message.messageId);
          // A slow SMTP server, so the two sweeps overlap on the same rows.
          await sleep(20);
          return { messageId: message.messageId };
        },
        close() {},
      };
      const activities = createEmailActivities({
        sql: h.sql,
        mailer,
        invoicePayments: null,
        workflows: { isRunning: () => Promise.resolve(false) },
        config: {
          stripe: { livemode: false },
          emailDomain: 'credits.test',
          outbox: { sweepAfterMs: 30 * 60_000, giveUpAfterMs: 24 * 3600_000 },
        },
      });
      try {
        await Promise.all([
          new MockActivityEnvironment().run(activities.sweepOutbox),
          new MockActivityEnvironment().run(activities.sweepOutbox),
        ]);
        expect(sent).toHaveLength(count);
        expect(new Set(sent).size).toBe(count);
        const rows = await h.sql<{ status: string; attempts: number }[]>`
          SELECT status, attempts FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
        expect(rows).toHaveLength(count);
        expect(rows.every((row) => row.status === 'sent' && row.attempts === 1)).toBe(true);
      } finally {
        await h.sql`DELETE FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
      }
    });
  });
});
