import { findPack, listActivePacks, loadPackCatalog, syncPackCatalog, type PackCatalog } from '../db/catalog';
import { createSql, type Sql } from '../db/client';
import { migrate } from '../db/migrate';

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

  it('when migrations run again, concurrently, then nothing is applied twice and nothing fails', async () => {
    const url = process.env.TEST_DATABASE_URL ?? '';
    const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
    expect(results).toEqual([[], [], []]);
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
