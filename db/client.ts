import postgres from 'postgres';

export type Sql = postgres.Sql;
/** The pool or an open transaction: query helpers accept either and join the caller's transaction. */
export type Queryable = postgres.Sql | postgres.TransactionSql;
/**
 * A statement built and not sent yet: awaited, it runs on its own; written into another
 * statement (`tx\`WITH a AS (${statement}) …\``), postgres.js nests it there with its parameters.
 */
export type Statement<T extends readonly object[] = postgres.Row[]> = postgres.PendingQuery<T>;

/**
 * Seconds a connection waits before it reconnects, after `attempt` failed connections in a row
 * (the pool's count). postgres.js's own backoff grows to 20 s, and a query handed to a connection
 * that is waiting waits with it: while the database is down an API request would take up to 20 s
 * to be answered 503, and after it is back the pool would return no sooner. Here it grows from
 * 50 ms to at most 1 s, with jitter so that the connections of many processes do not reconnect in
 * step. A down database refuses a connection at once, so this is also how often it is tried.
 */
function reconnectDelaySeconds(attempt: number): number {
  return Math.min(0.05 * 2 ** attempt, 1) * (0.5 + Math.random() / 2);
}

/**
 * One pool per process. int8 columns come back as strings from the driver; the query modules
 * convert them with `toSafeInteger`, so an out-of-range value fails loudly instead of rounding.
 *
 * Connections are made on demand and made again after they die (a restart of the server, a
 * terminated backend): a query whose connection dies fails with CONNECTION_CLOSED (an outage, see
 * `isDatabaseUnavailable`), the next one reconnects. postgres.js is patched (patches/) so that a
 * connection dying with a write pending rejects that write's query instead of throwing where
 * nothing can catch it, which would end the process.
 */
export function createSql(databaseUrl: string, options: { max?: number } = {}): Sql {
  return postgres(databaseUrl, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
    backoff: reconnectDelaySeconds,
    onnotice: () => {},
  });
}

// postgres.js and PostgreSQL codes that mean "the database cannot be reached right now".
const UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/** Whether an error means the database is down or unreachable (an outage, not a bug). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNAVAILABLE.has(code);
}

/**
 * Statements a transaction's work has sent and not awaited, to go out with its COMMIT: see
 * `transactionCommittingWith`. Every statement of `pending` must already be on its way: a write
 * refused in JavaScript before it was sent would let those sent beside it commit without it. So
 * the work decides, and refuses, before it sends any of them.
 */
export class SentWithCommit<T> {
  constructor(readonly pending: Promise<T>) {
    // Observed after the COMMIT; until then a failure must not count as unhandled.
    pending.catch(() => {});
  }
}

/**
 * `sql.begin`, for work whose last statements may travel with the COMMIT in one round trip: the
 * work reads and decides, sends its writes and answers `new SentWithCommit(writes)` instead of
 * awaiting them. The locks it took are then released one round trip sooner, which is what a
 * movement on a busy account waits for. Work that answers a plain value commits as `sql.begin`
 * does.
 *
 * After a failed statement PostgreSQL answers COMMIT by rolling back, without an error: so the
 * writes are awaited once the COMMIT is answered, and their failure is this call's. Either
 * everything committed and the writes succeeded, or nothing committed and this throws.
 */
export async function transactionCommittingWith<T>(
  sql: Sql,
  work: (tx: postgres.TransactionSql) => Promise<T | SentWithCommit<T>>,
): Promise<T> {
  const { answer } = await sql.begin(async (tx) => ({ answer: await work(tx) }));
  return answer instanceof SentWithCommit ? await answer.pending : answer;
}
