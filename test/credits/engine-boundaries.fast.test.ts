import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The credit engine owns its tables: every balance change goes through its public functions
 * (credits/index.ts), so each one writes its ledger row, its outbound event and its follow-ups.
 * What it may import is checked by lint (eslint.config.mjs); this reads the SQL of everything else.
 */
const ROOT = path.join(__dirname, '..', '..');
const ENGINE_TABLES = [
  'credit_balances',
  'credit_ledger',
  'credit_grants',
  'credit_allocations',
  'credit_reservations',
  'balance_follow_ups',
  'usage_events',
  'usage_retention',
];
/**
 * Files outside the engine that write its tables, and why. The benchmark's growth run stores
 * millions of past events and ledger rows in one statement each (as a test stages an old
 * database); through the engine that would take hours.
 */
const STAGING = ['scripts/bench/usage/workload.ts'];
/** Source outside the engine. Tests may write anything (they stage crashes and old databases). */
const FOLDERS = [
  'activities',
  'api',
  'cli',
  'config',
  'db',
  'domain',
  'email',
  'scripts',
  'stripe',
  'temporal',
  'worker',
  'workflows',
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const tables = ENGINE_TABLES.join('|');
const WRITES = new RegExp(
  `\\b(INSERT\\s+INTO|UPDATE|DELETE\\s+FROM|TRUNCATE(\\s+TABLE)?)\\s+(${tables})\\b`,
  'gi',
);
// A lock taken on an engine row is a movement's first step: only the engine takes it.
const LOCKS = new RegExp(
  `\\bFROM\\s+(${tables})\\b[^\`;]*\\bFOR\\s+(UPDATE|NO\\s+KEY\\s+UPDATE|SHARE)\\b`,
  'gi',
);

describe('the credit engine has no side doors', () => {
  it('when the code outside credits/ is read, then none of it writes or locks the engine’s tables', () => {
    const files = FOLDERS.flatMap((folder) => sourceFiles(path.join(ROOT, folder)));
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((file) => {
      if (STAGING.includes(path.relative(ROOT, file))) return [];
      const text = readFileSync(file, 'utf8');
      return [...text.matchAll(WRITES), ...text.matchAll(LOCKS)].map(
        (match) => `${path.relative(ROOT, file)}: ${match[0].replace(/\s+/g, ' ').slice(0, 80)}`,
      );
    });
    expect(found).toEqual([]);
  });

  it('when the check reads a write, an update or a lock of an engine table, then it sees it', () => {
    const seen = (text: string) => [...text.matchAll(WRITES), ...text.matchAll(LOCKS)].length;
    expect(seen('await tx`UPDATE credit_grants SET expires_at = now()`')).toBe(1);
    expect(seen('INSERT INTO credit_balances (account_id, balance) VALUES ($1, 0)')).toBe(1);
    expect(seen('SELECT 1 FROM credit_balances WHERE account_id = $1 FOR UPDATE')).toBe(1);
    expect(seen('SELECT balance_after FROM credit_ledger WHERE business_key = $1')).toBe(0);
  });
});
