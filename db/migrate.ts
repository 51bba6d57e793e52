import path from 'node:path';
import { Client } from 'pg';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');

/**
 * Applies every pending migration. node-pg-migrate holds an advisory lock while it runs, so
 * replicas that start together apply each migration once; running it again is a no-op.
 */
export async function migrate(
  databaseUrl: string,
  log: (message: string) => void = () => {},
  options: { count?: number } = {},
): Promise<string[]> {
  const { runner } = await import('node-pg-migrate');
  // Given a URL, the runner ends its connection without waiting for it, so the connection could
  // outlive migrate() and die later where nothing handles its error. Given a client of ours, the
  // connection is closed before migrate() returns.
  const dbClient = new Client({ connectionString: databaseUrl });
  await dbClient.connect();
  try {
    const applied = await runner({
      dbClient,
      dir: MIGRATIONS_DIR,
      migrationsTable: 'schema_migrations',
      direction: 'up',
      // A bounded count migrates part of the way, as an older release left a database.
      count: options.count ?? Infinity,
      checkOrder: true,
      singleTransaction: true,
      // A second runner waits for the first and then finds nothing left to do.
      advisoryLockMode: 'wait',
      log,
      logger: { debug: () => {}, info: log, warn: log, error: log },
    });
    return applied.map((migration) => migration.name);
  } finally {
    await dbClient.end();
  }
}

if (require.main === module) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    process.stderr.write(
      'DATABASE_URL is required, for example postgres://user:pass@127.0.0.1:5432/credits\n',
    );
    process.exit(78);
  }
  migrate(databaseUrl)
    .then((applied) => {
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    })
    .catch((error: unknown) => {
      process.stderr.write(`migration failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    });
}
