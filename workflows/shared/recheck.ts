import { sleep } from '@temporalio/workflow';
import { msToNumber, type Duration } from '@temporalio/common/lib/time';

const FIRST_PAUSE_MS = 1_000;
const LONGEST_PAUSE_MS = 10 * 60_000;

/**
 * Stripe delivers events in any order, so an event may arrive before the one it depends on
 * (a refund before its purchase is granted, an invoice before its subscription is linked).
 * While the answer is "not yet", waits with growing pauses and checks again, until the answer
 * changes or the timeout passes; returns the last answer. Workflow time is replayed: deterministic.
 */
export async function recheckWhile<T>(
  answer: T,
  notYet: (answer: T) => boolean,
  check: () => Promise<T>,
  timeout: Duration,
): Promise<T> {
  const deadline = Date.now() + msToNumber(timeout);
  for (let pause = FIRST_PAUSE_MS; notYet(answer); pause = Math.min(pause * 2, LONGEST_PAUSE_MS)) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(pause, left));
    answer = await check();
  }
  return answer;
}
