import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { featureFromRow, type Feature, type FeatureRow } from '../../domain/usage-pricing';
import type { Sql } from '../client';

/**
 * The feature catalogue: what usage of each feature costs (`credits` per `units`) and whether
 * usage beyond the available credits is refused or owed. Synced from a versioned file as the
 * packs are (db/catalog/packs.ts): features missing from the file are deactivated, never deleted
 * (their events and ledger rows keep their meaning), and a file older than the version applied
 * last changes nothing. The credit engine reads the table in each usage transaction.
 */

export const DEFAULT_FEATURE_CATALOG = path.join(__dirname, '..', '..', 'config', 'catalog', 'features.json');

const featureCatalogSchema = z
  .object({
    version: z.number().int().positive(),
    features: z.array(
      z.strictObject({
        key: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/),
        name: z.string().min(1).max(200),
        credits: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        units: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        overdraft: z.enum(['refuse', 'allow']),
        active: z.boolean().default(true),
      }),
    ),
  })
  .refine((catalog) => new Set(catalog.features.map((f) => f.key)).size === catalog.features.length, {
    message: 'feature keys must be unique',
  });

export type FeatureCatalog = z.infer<typeof featureCatalogSchema>;

export function loadFeatureCatalog(file = DEFAULT_FEATURE_CATALOG): FeatureCatalog {
  const result = featureCatalogSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!result.success) throw new Error(`invalid feature catalog ${file}: ${z.prettifyError(result.error)}`);
  return result.data;
}

/** Brings the features table in line with the catalogue file (see the top of this file). */
export async function syncFeatureCatalog(
  sql: Sql,
  catalog: FeatureCatalog = loadFeatureCatalog(),
): Promise<{ applied: boolean; version: number }> {
  return sql.begin(async (tx) => {
    // The upsert also locks the state row, so concurrent start-ups apply one after the other.
    const [state] = await tx<{ version: number }[]>`
      INSERT INTO catalog_state (name, version) VALUES ('features', 0)
      ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
      RETURNING version`;
    if ((state?.version ?? 0) > catalog.version) return { applied: false, version: catalog.version };
    for (const feature of catalog.features) {
      await tx`
        INSERT INTO features (key, name, credits, units, overdraft, active)
        VALUES (${feature.key}, ${feature.name}, ${feature.credits}, ${feature.units}, ${feature.overdraft},
                ${feature.active})
        ON CONFLICT (key) DO UPDATE SET
          name = EXCLUDED.name, credits = EXCLUDED.credits, units = EXCLUDED.units,
          overdraft = EXCLUDED.overdraft, active = EXCLUDED.active, updated_at = now()`;
    }
    await tx`
      UPDATE features SET active = false, updated_at = now()
      WHERE active AND NOT (key = ANY(${catalog.features.map((f) => f.key)}::text[]))`;
    await tx`UPDATE catalog_state SET version = ${catalog.version}, applied_at = now() WHERE name = 'features'`;
    return { applied: true, version: catalog.version };
  });
}

/** The features usage may name now, by key. */
export async function listActiveFeatures(sql: Sql): Promise<Feature[]> {
  const rows = await sql<FeatureRow[]>`
    SELECT key, name, credits, units, overdraft, active FROM features WHERE active ORDER BY key`;
  return rows.map(featureFromRow);
}
