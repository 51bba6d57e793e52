import { rmSync } from 'node:fs';
import { createSql } from '../../db/client';
import { findBalanceDrift } from '../../credits/ledger';
import type { RunningService } from '../../scripts/local-services';

/** Invariant 2, over everything the suite did: every balance equals the sum of its ledger. */
export default async function globalTeardown(): Promise<void> {
  const url = process.env.TEST_DATABASE_URL;
  let failure: Error | null = null;
  try {
    if (url) {
      const sql = createSql(url, { max: 1 });
      const drift = await findBalanceDrift(sql);
      const [{ accounts } = { accounts: '0' }] = await sql<{ accounts: string }[]>`
        SELECT count(*)::text AS accounts FROM credit_balances`;
      await sql.end();
      if (drift.length > 0) {
        failure = new Error(`balance differs from the sum of the ledger: ${JSON.stringify(drift)}`);
      } else {
        console.log(`\nLedger check: all ${accounts} balances equal the sum of their ledger entries.`);
      }
    }
  } finally {
    const services = (globalThis as { __services?: RunningService[] }).__services ?? [];
    for (const service of services.reverse()) await service.stop().catch(() => {});
    const workDir = process.env.TEST_WORK_DIR;
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  }
  if (failure) throw failure;
}
