/** Shared pieces of the benchmark scripts: a bounded worker pool, percentiles, a local-only guard. */

/** Nearest-rank percentile of an ascending list (p in 0–100). */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[Math.min(sortedAscending.length, Math.max(1, rank)) - 1] ?? Number.NaN;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarizeLatencies(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 10) / 10;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? Number.NaN),
  };
}

/** Runs `total` tasks with at most `concurrency` in flight; each worker gets its own index. */
export async function runPool(
  total: number,
  concurrency: number,
  task: (index: number, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async (_, worker) => {
      while (next < total) {
        const index = next;
        next += 1;
        await task(index, worker);
      }
    }),
  );
}

/** Load goes to this machine only, unless the caller explicitly allows otherwise. */
export function assertLocalTarget(url: string, allowRemote: boolean): void {
  const { hostname } = new URL(url);
  const local = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(hostname) || hostname.startsWith('127.');
  if (!local && !allowRemote) {
    throw new Error(
      `refusing to send load to ${hostname}: only loopback targets unless --allow-remote is given`,
    );
  }
}
