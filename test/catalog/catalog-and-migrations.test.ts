import { readdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  findPack,
  listActivePacks,
  loadPackCatalog,
  syncPackCatalog,
  type PackCatalog,
} from '../../db/catalog/packs';
import { createSql, type Sql } from '../../db/client';
import { migrate } from '../../db/migrate';

describe('migrations and the pack catalog', () => {
  let sql: Sql;
  const shipped = loadPackCatalog();
  beforeAll(() => {
    sql = createSql(process.env.TEST_DATABASE_URL ?? '', { max: 2 });
  });
  afterAll(async () => {
    // Leave the shipped catalog in place for the other test files.
    await sql`UPDATE catalog_state SET version = 0 WHERE name = 'packs'`;
    await syncPackCatalog(sql, shipped);
    await sql.end();
  });

  it('when three runners migrate an empty database at once, then each migration is applied exactly once', async () => {
    const database = `migrate_${randomUUID().replaceAll('-', '')}`;
    await sql.unsafe(`CREATE DATABASE ${database}`);
    try {
      const target = new URL(process.env.TEST_DATABASE_URL ?? '');
      target.pathname = `/${database}`;
      const url = target.toString();
      const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
      const files = readdirSync(path.join(__dirname, '..', '..', 'db', 'migrations')).filter((f) =>
        f.endsWith('.sql'),
      );
      // One runner applied them all (in order); the others waited on the lock and found nothing.
      expect(results.map((applied) => applied.length).sort()).toEqual([0, 0, files.length]);
      const applied = createSql(url, { max: 1 });
      try {
        const rows = await applied<{ name: string }[]>`SELECT name FROM schema_migrations ORDER BY id`;
        expect(rows.map((row) => `${row.name}.sql`)).toEqual(files.sort());
        expect(await migrate(url)).toEqual([]);
      } finally {
        await applied.end();
      }
    } finally {
      await sql.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });

  it('when migrate returns, then its connection to the database is already closed (nothing left for a DROP DATABASE to kill)', async () => {
    const database = `migrate_${randomUUID().replaceAll('-', '')}`;
    await sql.unsafe(`CREATE DATABASE ${database}`);
    try {
      const target = new URL(process.env.TEST_DATABASE_URL ?? '');
      target.pathname = `/${database}`;
      await migrate(target.toString());
      const [open] = await sql<{ count: string }[]>`
        SELECT count(*)::text AS count FROM pg_stat_activity WHERE datname = ${database}`;
      expect(open?.count).toBe('0');
    } finally {
      await sql.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });

  it('when the shipped catalog is loaded, then it has at least three active packs', () => {
    expect(shipped.packs.filter((pack) => pack.active).length).toBeGreaterThanOrEqual(3);
  });

  it('when a pack leaves the catalog, then it is deactivated, not deleted, and an older catalog cannot come back', async () => {
    // Works on a pack of its own so the shipped packs stay active for the other test files.
    const extra = {
      id: 'retiring-pack',
      name: 'Retiring',
      credits: 42,
      priceCents: 420,
      currency: 'usd',
      active: true,
    };
    const withExtra: PackCatalog = { version: shipped.version + 1, packs: [...shipped.packs, extra] };
    const withoutExtra: PackCatalog = { version: shipped.version + 2, packs: shipped.packs };
    expect(await syncPackCatalog(sql, withExtra)).toMatchObject({ applied: true });
    expect((await listActivePacks(sql)).map((pack) => pack.id)).toContain('retiring-pack');

    expect(await syncPackCatalog(sql, withoutExtra)).toMatchObject({ applied: true });
    expect((await listActivePacks(sql)).map((pack) => pack.id)).not.toContain('retiring-pack');
    expect(await findPack(sql, 'retiring-pack')).toMatchObject({
      active: false,
      credits: 42,
      priceCents: 420,
    });

    expect(await syncPackCatalog(sql, withExtra)).toEqual({
      applied: false,
      version: withExtra.version,
      currentVersion: withoutExtra.version,
    });
    expect(await findPack(sql, 'retiring-pack')).toMatchObject({ active: false });
  });
});
