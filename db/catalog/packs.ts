import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { priceCustomCredits, type CustomCreditPricing } from '../../domain/checkout-pricing';
import { errors } from '../../domain/errors';
import { toSafeInteger } from '../../domain/integers';
import type { PackPrice } from '../../domain/purchase-rules';
import type { Sql } from '../client';
import { syncFeatureCatalog } from './features';
import { syncPlanCatalog } from './plans';

export const DEFAULT_PACK_CATALOG = path.join(__dirname, '..', '..', 'config', 'catalog', 'packs.json');

const packCatalogSchema = z
  .object({
    version: z.number().int().positive(),
    packs: z.array(
      z.strictObject({
        id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
        name: z.string().min(1),
        credits: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        priceCents: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        currency: z.string().regex(/^[a-z]{3}$/, 'a lower-case ISO currency code'),
        active: z.boolean().default(true),
      }),
    ),
  })
  .refine((catalog) => new Set(catalog.packs.map((pack) => pack.id)).size === catalog.packs.length, {
    message: 'pack IDs must be unique',
  });

export type PackCatalog = z.infer<typeof packCatalogSchema>;

export interface Pack extends PackPrice {
  name: string;
  active: boolean;
}

export function loadPackCatalog(file = DEFAULT_PACK_CATALOG): PackCatalog {
  const result = packCatalogSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!result.success) throw new Error(`invalid pack catalog ${file}: ${z.prettifyError(result.error)}`);
  return result.data;
}

/**
 * Brings the database in line with the catalog file. Packs missing from the file are
 * deactivated, never deleted. A catalog older than the one applied last is skipped, so a
 * replica still running an old release cannot undo a newer catalog.
 */
export async function syncPackCatalog(
  sql: Sql,
  catalog: PackCatalog,
): Promise<{ applied: boolean; version: number; currentVersion: number }> {
  return sql.begin(async (tx) => {
    await tx`INSERT INTO catalog_state (name, version) VALUES ('packs', 0) ON CONFLICT DO NOTHING`;
    const [state] = await tx<{ version: number }[]>`
      SELECT version FROM catalog_state WHERE name = 'packs' FOR UPDATE`;
    const currentVersion = state?.version ?? 0;
    if (currentVersion > catalog.version) return { applied: false, version: catalog.version, currentVersion };

    for (const pack of catalog.packs) {
      await tx`
        INSERT INTO credit_packs (id, name, credits, price_cents, currency, active)
        VALUES (${pack.id}, ${pack.name}, ${pack.credits}, ${pack.priceCents}, ${pack.currency}, ${pack.active})
        ON CONFLICT (id) DO UPDATE SET
          name = EXCLUDED.name, credits = EXCLUDED.credits, price_cents = EXCLUDED.price_cents,
          currency = EXCLUDED.currency, active = EXCLUDED.active, updated_at = now()`;
    }
    await tx`
      UPDATE credit_packs SET active = false, updated_at = now()
      WHERE active AND NOT (id = ANY(${catalog.packs.map((pack) => pack.id)}::text[]))`;
    await tx`UPDATE catalog_state SET version = ${catalog.version}, applied_at = now() WHERE name = 'packs'`;
    return { applied: true, version: catalog.version, currentVersion: catalog.version };
  });
}

interface PackRow {
  id: string;
  name: string;
  credits: string;
  price_cents: string;
  currency: string;
  active: boolean;
}

function toPack(row: PackRow): Pack {
  return {
    id: row.id,
    name: row.name,
    credits: toSafeInteger(row.credits, 'pack credits'),
    priceCents: toSafeInteger(row.price_cents, 'pack price'),
    currency: row.currency,
    active: row.active,
  };
}

/** Applies the shipped catalogs, packs, plans and features: what every start-up and test set-up does. */
export async function syncCatalogs(sql: Sql): Promise<{
  packs: Awaited<ReturnType<typeof syncPackCatalog>>;
  plans: Awaited<ReturnType<typeof syncPlanCatalog>>;
  features: Awaited<ReturnType<typeof syncFeatureCatalog>>;
}> {
  const packs = await syncPackCatalog(sql, loadPackCatalog());
  const plans = await syncPlanCatalog(sql);
  const features = await syncFeatureCatalog(sql);
  return { packs, plans, features };
}

export async function listActivePacks(sql: Sql): Promise<Pack[]> {
  const rows = await sql<PackRow[]>`
    SELECT id, name, credits, price_cents, currency, active FROM credit_packs
    WHERE active ORDER BY price_cents, id`;
  return rows.map(toPack);
}

/** Any pack, active or retired: a session sold before retirement is still honoured. */
export async function findPack(sql: Sql, id: string): Promise<Pack | null> {
  const [row] = await sql<PackRow[]>`
    SELECT id, name, credits, price_cents, currency, active FROM credit_packs WHERE id = ${id}`;
  return row ? toPack(row) : null;
}

/** What a buyer asked for, priced by the server: never a price or amount from the request. */
export interface Sale {
  packId: string | null;
  name: string;
  credits: number;
  amountCents: number;
  currency: string;
}

/** Prices a pack by ID (the catalog's price) or a number of credits (the configured pricing). */
export async function priceSale(
  sql: Sql,
  request: { packId?: string | undefined; credits?: number | undefined },
  pricing: CustomCreditPricing,
): Promise<Sale> {
  if (request.packId !== undefined) {
    const pack = await findPack(sql, request.packId);
    if (!pack?.active) throw errors.packNotFound(request.packId);
    const { id, name, credits, priceCents, currency } = pack;
    return { packId: id, name, credits, amountCents: priceCents, currency };
  }
  const credits = request.credits ?? 0;
  const { amountCents, currency } = priceCustomCredits(credits, pricing);
  return { packId: null, name: `${credits.toLocaleString('en-US')} credits`, credits, amountCents, currency };
}
