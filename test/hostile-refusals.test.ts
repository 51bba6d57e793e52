import { MockActivityEnvironment } from '@temporalio/testing';
import { randomUUID } from 'node:crypto';
import { createEmailActivities } from '../activities/email/email';
import type { Mailer } from '../email/mailer';
import { holdCredits } from '../credits/reservations';
import { statusQuery } from '../workflows/purchases/contract';
import { checkoutSession, stripeEvent } from '../stripe/fixtures/index';
import { checkedBalance, grantDirectly } from './support/billing';
import { API_KEY, startHarness, type Harness } from './support/harness';
import { StripeStandIn } from './support/stripe-stand-in';
import { sleep, waitUntil } from './support/wait';

/**
 * Hostile callers and unlucky operators: inputs and timings that once slipped through (a 500, a
 * grant with no audit entry, a workflow retrying forever, a key shared by two accounts), each
 * answered now with a clear refusal or its documented outcome.
 */
describe('hostile inputs and timings that must be refused or handled', () => {
  let stripe: StripeStandIn;
  let h: Harness;
  beforeAll(async () => {
    stripe = await StripeStandIn.start();
    h = await startHarness({
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

  describe('debits', () => {
    it('when a debit reason holds a lone surrogate (it could not be stored as sent), then 400 invalid_request and nothing moves', async () => {
      const account = await funded(100);
      const body = { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason: 'render \ud800 frame' };
      const first = await h.api('POST', `/v1/accounts/${account.id}/debits`, body, API_KEY);
      expect(first).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
      expect(await checkedBalance(h, account.id)).toBe(100);
    });

    it('when a debit reason holds a NUL character, then 400 invalid_request and nothing moves, not a 500', async () => {
      const account = await funded(100);
      const answer = await h.api(
        'POST',
        `/v1/accounts/${account.id}/debits`,
        { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason: 'usage\u0000' },
        API_KEY,
      );
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('invalid_request');
      expect(await checkedBalance(h, account.id)).toBe(100);
    });
  });

  describe('grants', () => {
    it('when a grant key is replayed with another priority, then 409 idempotency_key_reused and the grant keeps its priority', async () => {
      const account = await h.newAccount();
      const grant = {
        amount: 50,
        category: 'promotional',
        reason: 'launch',
        idempotencyKey: `promo-${randomUUID()}`,
        priority: 5,
      };
      const first = await h.api('POST', `/v1/accounts/${account.id}/grants`, grant);
      expect(first.status).toBe(201);

      const changed = await h.api('POST', `/v1/accounts/${account.id}/grants`, { ...grant, priority: 900 });
      expect(changed.status).toBe(409);
      expect(changed.body.error.code).toBe('idempotency_key_reused');
    });

    it('when a grant would take the balance past 2^53, then a 4xx with a stable code and nothing moves, not 500 internal_error', async () => {
      const account = await h.newAccount();
      const grant = (amount: number) =>
        h.api('POST', `/v1/accounts/${account.id}/grants`, {
          amount,
          reason: 'huge',
          idempotencyKey: `huge-${randomUUID()}`,
        });
      expect((await grant(Number.MAX_SAFE_INTEGER)).status).toBe(201);

      const overflow = await grant(2);
      expect(overflow.status).toBeGreaterThanOrEqual(400);
      expect(overflow.status).toBeLessThan(500);
      expect(overflow.body.error.code).not.toBe('internal_error');
      expect(await checkedBalance(h, account.id)).toBe(Number.MAX_SAFE_INTEGER);
    });
  });

  describe('reservations', () => {
    it('when a hold is captured after its TTL (before any timer released it), then it is refused and nothing is debited', async () => {
      const account = await funded(100);
      // Made in the database, so no timer runs: the TTL passes with the hold still marked held,
      // as it does while the worker is down or the timer lags.
      const { reservation } = await holdCredits(h.sql, {
        accountId: account.id,
        amount: 40,
        ttlSeconds: 1,
        idempotencyKey: `job-${randomUUID()}`,
      });
      await sleep(1500);

      const capture = await h.api(
        'POST',
        `/v1/accounts/${account.id}/reservations/${reservation.id}/capture`,
        { reason: 'late' },
        API_KEY,
      );
      expect(capture.status).toBe(409);
      expect(await checkedBalance(h, account.id)).toBe(100);
    });
  });

  describe('checkout idempotency keys', () => {
    it('when two accounts send keys that spell the same "<account>:<key>", then each gets its own session, not 409', async () => {
      const base = `acct_${randomUUID()}`;
      // Account IDs may hold ':' (the API allows it): "<base>" + "b:c" and "<base>:b" + "c".
      for (const id of [base, `${base}:b`]) {
        const answer = await h.api('POST', '/v1/accounts', { id, email: `${randomUUID()}@customers.test` });
        expect(answer.status).toBe(201);
      }
      const checkout = (accountId: string, key: string) =>
        fetch(`${h.baseUrl}/v1/checkout/sessions`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${API_KEY}`,
            'content-type': 'application/json',
            'idempotency-key': key,
          },
          body: JSON.stringify({
            accountId,
            packId: 'starter',
            successUrl: 'https://app.example.com/ok',
            cancelUrl: 'https://app.example.com/cancel',
          }),
        }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));

      const a = await checkout(base, 'b:c');
      expect(a.status).toBe(201);
      const b = await checkout(`${base}:b`, 'c');
      expect(b.status).toBe(201);
      expect(b.body.id).not.toBe(a.body.id);
      const [row] = await h.sql<{ account_id: string }[]>`
        SELECT account_id FROM checkout_sessions WHERE id = ${b.body.id as string}`;
      expect(row?.account_id).toBe(`${base}:b`);
    });
  });

  describe('the review desk', () => {
    async function heldPurchase() {
      const account = await h.newAccount();
      const session = checkoutSession({ packId: 'starter', accountId: account.id, amountTotal: 850 });
      const event = stripeEvent('checkout.session.completed', session);
      expect((await h.deliver(event)).status).toBe(200);
      const handle = h.temporal.workflow.getHandle(event.id);
      await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
        what: 'held_for_review',
      });
      return { account, event, handle };
    }

    it('when an approval note holds a NUL character, then it is refused with 400 and the purchase stays held, never granted without an audit entry', async () => {
      const { account, event, handle } = await heldPurchase();

      const answer = await h.api('POST', `/v1/reviews/${event.id}`, {
        decision: 'approve',
        note: 'coupon\u0000',
      });
      // Give a signal that did get through the time to grant.
      await sleep(3000);
      const audit = await h.api('GET', `/v1/audit?subject=workflow:${event.id}`);
      const outcome = {
        status: answer.status,
        stage: (await handle.query(statusQuery)).stage,
        balance: await checkedBalance(h, account.id),
        audited: (audit.body.entries as unknown[]).length,
      };
      expect(outcome).toEqual({ status: 400, stage: 'held_for_review', balance: 0, audited: 0 });
    });

    it('when a rejection note holds a NUL character, then it is refused with 400 and the workflow is not left retrying its close forever', async () => {
      const { event, handle } = await heldPurchase();

      const answer = await h.api('POST', `/v1/reviews/${event.id}`, {
        decision: 'reject',
        note: 'fraud\u0000',
      });
      await sleep(3000);
      const description = await handle.describe();
      const failing = (description.raw.pendingActivities ?? []).filter(
        (activity) => (activity.attempt ?? 0) > 1,
      );
      expect({ status: answer.status, retryingActivities: failing.length }).toEqual({
        status: 400,
        retryingActivities: 0,
      });
      await handle.terminate('test cleanup');
    });
  });

  describe('the outbox sweep', () => {
    it('when more than a batch of stale emails belong to running workflows, then an older-than-sweep email of a closed workflow is still delivered', async () => {
      const account = await h.newAccount();
      const prefix = `hol-${randomUUID()}`;
      // 200 receipts still in their workflows' hands (a long SMTP outage), queued first...
      await h.sql`
        INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id, created_at)
        SELECT ${prefix} || ':running:' || n, ${account.id}, 'x@customers.test', 's', 'b',
               ${prefix} || '-running-' || n, now() - interval '50 minutes' + n * interval '1 millisecond'
        FROM generate_series(1, 200) AS n`;
      // ...then one whose workflow is gone: only the sweep can deliver it.
      const orphan = `${prefix}:orphan`;
      await h.sql`
        INSERT INTO email_outbox (key, account_id, to_address, subject, body_text, workflow_id, created_at)
        VALUES (${orphan}, ${account.id}, 'x@customers.test', 's', 'b', ${`${prefix}-gone`},
                now() - interval '45 minutes')`;
      const sent: string[] = [];
      const mailer: Mailer = {
        send(message) {
          sent.push(message.messageId);
          return Promise.resolve({ messageId: message.messageId });
        },
        close() {},
      };
      const activities = createEmailActivities({
        sql: h.sql,
        mailer,
        invoicePayments: null,
        workflows: { isRunning: (workflowId) => Promise.resolve(workflowId.includes('-running-')) },
        // Younger than the harness's sweep age: no other worker sweeps these rows.
        config: {
          stripe: { livemode: false },
          emailDomain: 'credits.test',
          outbox: { sweepAfterMs: 30 * 60_000, giveUpAfterMs: 24 * 3600_000 },
        },
      });
      try {
        // Every maintenance interval sweeps again; a few sweeps are more than enough.
        for (let sweep = 0; sweep < 3; sweep += 1) {
          await new MockActivityEnvironment().run(activities.sweepOutbox);
        }
        const [row] = await h.sql<
          { status: string }[]
        >`SELECT status FROM email_outbox WHERE key = ${orphan}`;
        expect(row?.status).toBe('sent');
      } finally {
        await h.sql`DELETE FROM email_outbox WHERE key LIKE ${`${prefix}:%`}`;
      }
    });
  });
});
