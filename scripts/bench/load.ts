/**
 * The two ways load is applied. Open loop: one send every 1/rate seconds whatever the answers
 * (as Stripe does: it does not wait for one webhook to be answered before it sends the next).
 * Closed loop: C senders, each sending its next as soon as the last was answered: the most the
 * system under test acknowledges.
 */

export interface Shot {
  /** Epoch milliseconds when the request was sent. */
  sentAt: number;
  /** Milliseconds until it was answered. */
  ackMs: number;
  /** "ok", or what went wrong (HTTP status, error code). */
  outcome: string;
}

export type Fire = (index: number) => Promise<string>;

async function shoot(fire: Fire, index: number): Promise<Shot> {
  const sentAt = Date.now();
  const started = performance.now();
  let outcome: string;
  try {
    outcome = await fire(index);
  } catch (error) {
    const err = error as Error & { cause?: { code?: string }; code?: unknown };
    outcome = err.cause?.code ?? (typeof err.code === 'string' ? err.code : err.name);
  }
  return { sentAt, ackMs: performance.now() - started, outcome };
}

export async function openLoop(count: number, ratePerSecond: number, fire: Fire): Promise<Shot[]> {
  const pending: Array<Promise<Shot>> = [];
  const start = performance.now();
  for (let index = 0; index < count; index += 1) {
    const due = start + (index * 1000) / ratePerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(shoot(fire, index));
  }
  return Promise.all(pending);
}

export async function closedLoop(count: number, concurrency: number, fire: Fire): Promise<Shot[]> {
  const shots = new Array<Shot>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        shots[index] = await shoot(fire, index);
      }
    }),
  );
  return shots;
}
