import { parseArgs } from 'node:util';
import { createSql } from '../db/client';
import { findBalanceDrift, findOrphanRows } from '../credits/index';
import { operatorEnvironment } from './dev-stack';

/**
 * DESIGN invariant 2, checked: for every account the stored balance equals the sum of its ledger
 * deltas and what its grants hold; no ledger row or allocation names an account or grant that
 * does not exist; each usage ledger row burned exactly what its events say. Prints OK and how
 * many accounts were checked (exit 0), or what is wrong (exit 1). Exit 2: it could not check
 * (bad usage, database unreachable).
 *
 *   DATABASE_URL=postgres://… npm run verify:ledger   (without it: the running `npm run dev`'s)
 */

const USAGE = `usage: [DATABASE_URL=postgres://…] npm run verify:ledger [-- --json]

Checks that every account's stored balance equals the sum of its ledger and what its grants hold
(DESIGN invariant 2), that no ledger row or allocation names a missing account or grant, and that
each usage ledger row burned exactly the credits of its events.
Without DATABASE_URL, checks the database of the running \`npm run dev\`.
Exit 0: no drift. Exit 1: drift, every drifted account listed. Exit 2: could not check.

  --json       print the result as JSON
  -h, --help   this help
`;

async function main(argv: string[]): Promise<number> {
  let values: { json: boolean; help: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const environment = operatorEnvironment(process.env, 'DATABASE_URL');
  if ('error' in environment) {
    process.stderr.write(`${environment.error}\n\n${USAGE}`);
    return 2;
  }
  const databaseUrl = environment.env.DATABASE_URL ?? '';

  const sql = createSql(databaseUrl, { max: 1 });
  try {
    const drift = await findBalanceDrift(sql);
    const orphans = await findOrphanRows(sql);
    const orphaned = orphans.ledgerRows + orphans.allocations + orphans.usageRows;
    const [counted] = await sql<
      { accounts: string }[]
    >`SELECT count(*)::text AS accounts FROM credit_balances`;
    const accounts = Number(counted?.accounts ?? 0);

    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ ok: drift.length === 0 && orphaned === 0, accounts, drift, orphans }, null, 2)}\n`,
      );
    } else if (drift.length === 0 && orphaned === 0) {
      process.stdout.write(
        `OK: ${accounts} account${accounts === 1 ? '' : 's'} checked, balance = Σ ledger\n`,
      );
    } else {
      if (orphaned > 0) {
        process.stdout.write(
          `ORPHANS: ${orphans.ledgerRows} ledger rows of no account, ${orphans.allocations} allocations of no grant, ` +
            `${orphans.usageRows} usage rows whose events disagree\n`,
        );
      }
      process.stdout.write(
        `DRIFT: ${drift.length} of ${accounts} accounts have a balance that differs from their ledger\n`,
      );
      const width = Math.max(...drift.map((row) => row.accountId.length), 'account'.length);
      process.stdout.write(
        `${'account'.padEnd(width)}  ${'balance'.padStart(12)}  ${'Σ ledger'.padStart(12)}  ${'difference'.padStart(12)}\n`,
      );
      for (const row of drift) {
        const difference = BigInt(row.balance) - BigInt(row.ledgerSum);
        process.stdout.write(
          `${row.accountId.padEnd(width)}  ${row.balance.padStart(12)}  ${row.ledgerSum.padStart(12)}  ${`${difference > 0n ? '+' : ''}${difference}`.padStart(12)}\n`,
        );
      }
    }
    return drift.length === 0 && orphaned === 0 ? 0 : 1;
  } catch (error) {
    process.stderr.write(
      `could not check the ledger: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 2;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 2;
  },
);
