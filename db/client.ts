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
