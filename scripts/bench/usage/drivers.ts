import http from 'node:http';
import { summarizeLatencies, type LatencySummary } from '../../bench-support';

/**
 * How load is applied: closed loop (C clients, each sending its next as soon as the last was
 * answered: the most the system under test does) and open loop (one request every 1/rate
 * seconds, whatever the answers: the latency a steady rate sees).
 */

export interface Measured {
  count: number;
  seconds: number;
  latency: LatencySummary;
  /** What went wrong, by kind; none in a valid run. */
  errors: Record<string, number>;
}

function tally(errors: Record<string, number>, error: unknown): void {
  const kind = error instanceof Error ? error.message.slice(0, 120) : String(error);
  errors[kind] = (errors[kind] ?? 0) + 1;
}

export async function closedLoop<T>(
  items: readonly T[],
  clients: number,
  send: (item: T, client: number) => Promise<void>,
): Promise<Measured> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(clients, items.length) }, async (_, client) => {
      for (let index = next++; index < items.length; index = next++) {
        const sent = performance.now();
        try {
          await send(items[index] as T, client);
        } catch (error) {
          tally(errors, error);
        }
        latencies.push(performance.now() - sent);
      }
    }),
  );
  return {
    count: items.length,
    seconds: (performance.now() - started) / 1000,
    latency: summarizeLatencies(latencies),
    errors,
  };
}

export async function openLoop(
  ratePerSecond: number,
  seconds: number,
  send: (index: number) => Promise<void>,
): Promise<Measured> {
  const count = Math.round(ratePerSecond * seconds);
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const pending: Array<Promise<void>> = [];
  const started = performance.now();
  for (let index = 0; index < count; index += 1) {
    const due = started + (index * 1000) / ratePerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const sent = performance.now();
    pending.push(
      send(index).then(
        () => {
          latencies.push(performance.now() - sent);
        },
        (error: unknown) => {
          latencies.push(performance.now() - sent);
          tally(errors, error);
        },
      ),
    );
  }
  await Promise.all(pending);
  return {
    count,
    seconds: (performance.now() - started) / 1000,
    latency: summarizeLatencies(latencies),
    errors,
  };
}

// Node's http client with kept-alive sockets: the benchmark shares the machine with what it
// measures, and fetch costs the client several times more CPU per request.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** A JSON request to the API under test; throws on an unexpected status. */
export function call(
  url: string,
  apiKey: string,
  method: string,
  path: string,
  body: string | null,
  expect: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${url}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          ...(body === null
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (response.statusCode !== expect) {
            reject(
              new Error(
                `${method} ${path.split('/').slice(0, 3).join('/')}: ${response.statusCode} ${text.slice(0, 80)}`,
              ),
            );
            return;
          }
          try {
            resolve(text ? (JSON.parse(text) as unknown) : null);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    request.on('error', reject);
    request.end(body ?? undefined);
  });
}
