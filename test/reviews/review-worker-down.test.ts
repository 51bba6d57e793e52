import { statusQuery } from '../../workflows/purchases/contract';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { PACKS } from '../support/billing';
import { balanceOf, ledgerRowsFor, purchaseRow } from '../support/db';
import { startHarness, type Harness } from '../support/harness';
import { waitUntil } from '../support/wait';

/**
 * A decision is the run's `decide` update: while no worker runs, nobody validates or applies it,
 * so the desk answers 503 once REVIEW_APPLY_WAIT_MS has passed. Temporal keeps the update for
 * the run (in memory), which applies it, whole, when a worker is back; nothing is ever half-done.
 */
describe('a review decision while the worker is down', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ configOverrides: { REVIEW_APPLY_WAIT_MS: '2000' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  const auditOf = async (workflowId: string) =>
    (await h.api('GET', `/v1/audit?subject=workflow:${workflowId}`)).body.entries as {
      id: number;
      action: string;
      reason: string | null;
    }[];

  it('when no worker runs, then the decision answers 503 review_not_delivered with nothing granted or audited, and once a worker is back it is applied whole (grant and audit row in one transaction) or not at all', async () => {
    const account = await h.newAccount();
    const session = checkoutSession({ accountId: account.id, packId: 'starter', amountTotal: 850 });
    const sessionId = session.id as string;
    const event = stripeEvent('checkout.session.completed', session);
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
      what: 'the purchase held',
    });

    await h.stopWorker();
    const answer = await h.api('POST', `/v1/reviews/${event.id}`, {
      decision: 'approve',
      note: 'while down',
    });
    expect(answer).toMatchObject({ status: 503, body: { error: { code: 'review_not_delivered' } } });
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(0);
    expect(await auditOf(event.id)).toEqual([]);
    expect(await purchaseRow(h.sql, sessionId)).toMatchObject({ status: 'held_for_review' });

    await h.startWorker();
    // Temporal delivers the update it kept with the run's next workflow task; were it lost (a
    // server restart), the run would still be held with nothing written.
    const applied = await waitUntil(async () => (await ledgerRowsFor(h.sql, sessionId)).length === 1, {
      what: 'the kept decision applied',
      timeoutMs: 30_000,
    }).catch(() => false);
    const ledger = await ledgerRowsFor(h.sql, sessionId);
    const audit = await auditOf(event.id);
    expect({ ledger: ledger.length, audit: audit.map((entry) => entry.action) }).toEqual(
      applied ? { ledger: 1, audit: ['review.approved'] } : { ledger: 0, audit: [] },
    );
    if (applied) {
      const [ledgerTx] = await h.sql<{ tx: string }[]>`
        SELECT xmin::text AS tx FROM credit_ledger WHERE business_key = ${sessionId}`;
      const [auditTx] = await h.sql<{ tx: string }[]>`
        SELECT xmin::text AS tx FROM audit_log WHERE id = ${audit[0]?.id ?? 0}`;
      expect(auditTx?.tx).toBe(ledgerTx?.tx);
      expect(audit[0]?.reason).toBe('while down');
    }
    // Deciding again: refused once the first was applied, applied now if it was lost.
    const again = await h.api('POST', `/v1/reviews/${event.id}`, { decision: 'approve', note: 'again' });
    expect(again.status).toBe(applied ? 409 : 200);
    expect(await handle.result()).toMatchObject({ stage: 'completed', credits: PACKS.starter.credits });
    expect(await balanceOf(h.sql, account.id)).toBe(PACKS.starter.credits);
    expect(await ledgerRowsFor(h.sql, sessionId)).toHaveLength(1);
  });
});
