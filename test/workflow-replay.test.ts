import { Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { reviewSignal, statusQuery } from '../domain/purchase-workflow-contract';
import { findTemporalCli } from '../scripts/temporal-cli';
import { checkoutSession, stripeEvent, type CheckoutSessionOptions } from '../scripts/stripe-events';
import { startHarness, type Harness } from './support/harness';
import { installQuietRuntime } from './support/quiet-runtime';
import { waitUntil } from './support/wait';

/**
 * Histories recorded from real runs are replayed against the current workflow code, so a change
 * that would break executions already running in production fails here. Record new ones with
 * `npm run record:histories` after an intended, compatible workflow change (or a versioned one).
 */
const HISTORIES_DIR = path.join(__dirname, 'histories');
const recording = process.env.RECORD_HISTORIES === '1';

// Recording is a tool, not a test: it exists only when asked for.
if (recording)
  describe('recording purchase workflow histories', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness();
      mkdirSync(HISTORIES_DIR, { recursive: true });
    });
    afterAll(async () => {
      await h?.close();
    });

    async function record(
      name: string,
      options: Omit<CheckoutSessionOptions, 'accountId'>,
      review?: 'approve' | 'reject',
    ) {
      const account = await h.newAccount();
      const event = stripeEvent(
        'checkout.session.completed',
        checkoutSession({ accountId: account.id, packId: 'starter', ...options }),
      );
      await h.deliver(event);
      const handle = h.temporal.workflow.getHandle(event.id);
      if (review) {
        await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review');
        await handle.signal(reviewSignal, { decision: review, reviewer: 'recorder' });
      }
      await handle.result();
      // The CLI's JSON export is the format Temporal documents for replay.
      const history = execFileSync(
        findTemporalCli(),
        [
          'workflow',
          'show',
          '--workflow-id',
          event.id,
          '--address',
          h.config.temporal.address,
          '--output',
          'json',
        ],
        { encoding: 'utf8' },
      );
      writeFileSync(path.join(HISTORIES_DIR, `purchase-${name}.json`), history);
    }

    it('records the main paths', async () => {
      await record('granted', {});
      await record('awaiting-payment', { paymentStatus: 'unpaid' });
      await record('held-approved', { amountTotal: 1 }, 'approve');
      await record('held-rejected', { currency: 'eur' }, 'reject');
      h.smtp.refuseRecipients(550);
      await record('receipt-refused', {});
    });
  });

describe('purchase workflow replay', () => {
  it('when recorded histories are replayed against the current workflow code, then none is non-deterministic', async () => {
    installQuietRuntime();
    const files = readdirSync(HISTORIES_DIR).filter((file) => file.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    const histories = files.map((file) => ({
      workflowId: file,
      history: JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as unknown,
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE ?? '' } },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
  });
});
