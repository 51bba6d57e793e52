import postgres from 'postgres';

export type Sql = postgres.Sql;
/** The pool or an open transaction: query helpers accept either and join the caller's transaction. */
export type Queryable = postgres.Sql | postgres.TransactionSql;

/**
 * One pool per process. int8 columns come back as strings from the driver; the query modules
 * convert them with `toSafeInteger`, so an out-of-range value fails loudly instead of rounding.
 */
export function createSql(databaseUrl: string, options: { max?: number } = {}): Sql {
  return postgres(databaseUrl, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
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
