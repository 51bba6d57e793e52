import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { toSafeInteger } from '../../domain/integers';
import type { PlanTerms } from '../../domain/subscription-rules';
import type { Queryable, Sql } from '../client';

export const DEFAULT_PLAN_CATALOG = path.join(__dirname, '..', '..', 'config', 'catalog', 'plans.json');

const planCatalogSchema = z
  .object({
    version: z.number().int().positive(),
    plans: z.array(
      z.strictObject({
        id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/),
        name: z.string().min(1),
        /** The Stripe Price the subscription bills: how invoices and subscriptions name the plan. */
        stripePriceId: z.string().regex(/^price_\w+$/),
        creditsPerPeriod: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        priceCents: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
        currency: z.string().regex(/^[a-z]{3}$/, 'a lower-case ISO currency code'),
        interval: z.enum(['day', 'week', 'month', 'year']),
        rollover: z.boolean(),
        // Whether the unused credits of its periods expire when the subscription ends.
        expireOnCancel: z.boolean().default(false),
        active: z.boolean().default(true),
      }),
    ),
  })
  .refine((catalog) => new Set(catalog.plans.map((plan) => plan.id)).size === catalog.plans.length, {
    message: 'plan IDs must be unique',
  })
  .refine(
    (catalog) => new Set(catalog.plans.map((plan) => plan.stripePriceId)).size === catalog.plans.length,
    { message: 'each Stripe price belongs to one plan' },
  );

export type PlanCatalog = z.infer<typeof planCatalogSchema>;

export function loadPlanCatalog(file = DEFAULT_PLAN_CATALOG): PlanCatalog {
  const result = planCatalogSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!result.success) throw new Error(`invalid plan catalog ${file}: ${z.prettifyError(result.error)}`);
  return result.data;
}

/**
 * Brings subscription_plans in line with the catalog file, as the pack catalog does: plans
 * missing from the file are deactivated, never deleted (invoices of running subscriptions still
 * name them), and a file older than the version applied last changes nothing.
 */
export async function syncPlanCatalog(
  sql: Sql,
  catalog: PlanCatalog = loadPlanCatalog(),
): Promise<{ applied: boolean; version: number }> {
  return sql.begin(async (tx) => {
    // The upsert also locks the state row, so concurrent start-ups apply one after the other.
    const [state] = await tx<{ version: number }[]>`
      INSERT INTO catalog_state (name, version) VALUES ('plans', 0)
      ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
      RETURNING version`;
    if ((state?.version ?? 0) > catalog.version) return { applied: false, version: catalog.version };
    for (const plan of catalog.plans) {
      await tx`
        INSERT INTO subscription_plans (id, name, stripe_price_id, credits_per_period, price_cents, currency,
                                        billing_interval, rollover, expire_on_cancel, active)
        VALUES (${plan.id}, ${plan.name}, ${plan.stripePriceId}, ${plan.creditsPerPeriod}, ${plan.priceCents},
                ${plan.currency}, ${plan.interval}, ${plan.rollover}, ${plan.expireOnCancel}, ${plan.active})
        ON CONFLICT (id) DO UPDATE SET
          name = EXCLUDED.name, stripe_price_id = EXCLUDED.stripe_price_id,
          credits_per_period = EXCLUDED.credits_per_period, price_cents = EXCLUDED.price_cents,
          currency = EXCLUDED.currency, billing_interval = EXCLUDED.billing_interval,
          rollover = EXCLUDED.rollover, expire_on_cancel = EXCLUDED.expire_on_cancel, active = EXCLUDED.active,
          updated_at = now()`;
    }
    await tx`
      UPDATE subscription_plans SET active = false, updated_at = now()
      WHERE active AND NOT (id = ANY(${catalog.plans.map((plan) => plan.id)}::text[]))`;
    await tx`UPDATE catalog_state SET version = ${catalog.version}, applied_at = now() WHERE name = 'plans'`;
    return { applied: true, version: catalog.version };
  });
}

/** The plan a Stripe Price belongs to, active or retired (a running subscription keeps its plan). */
export async function findPlanByPrice(sql: Queryable, stripePriceId: string): Promise<PlanTerms | null> {
  const [row] = await sql<
    { id: string; name: string; stripe_price_id: string; credits_per_period: string; rollover: boolean }[]
  >`
    SELECT id, name, stripe_price_id, credits_per_period, rollover
    FROM subscription_plans WHERE stripe_price_id = ${stripePriceId}`;
  if (!row) return null;
  return {
    id: row.id,
    name: row.name,
    stripePriceId: row.stripe_price_id,
    creditsPerPeriod: toSafeInteger(row.credits_per_period, 'plan credits'),
    rollover: row.rollover,
  };
}
