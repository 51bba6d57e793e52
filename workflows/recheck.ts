import { sleep } from '@temporalio/workflow';
import { msToNumber, type Duration } from '@temporalio/common/lib/time';

const FIRST_PAUSE_MS = 1_000;
const LONGEST_PAUSE_MS = 10 * 60_000;

/**
 * Stripe delivers events in any order, so an event may arrive before the one it depends on
 * (a refund before its purchase is granted, an invoice before its subscription is linked).
 * After a check said "not yet", waits with growing pauses and checks again, until the check
 * gives an answer or the timeout passes (null). Workflow time is replayed: deterministic.
 */
export async function recheckUntil<T>(check: () => Promise<T | null>, timeout: Duration): Promise<T | null> {
  const deadline = Date.now() + msToNumber(timeout);
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
    const left = deadline - Date.now();
    if (left <= 0) return null;
    await sleep(Math.min(pause, left));
    const answer = await check();
    if (answer !== null) return answer;
  }
}
