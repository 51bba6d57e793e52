import { z } from 'zod';
import { listActivePacks, type Pack } from '../../db/catalog/packs';
import { defineRoute } from '../http/route';

const packResponse = z
  .object({
    id: z.string(),
    name: z.string(),
    credits: z.number().int(),
    amountCents: z.number().int(),
    currency: z.string(),
  })
  .meta({ id: 'Pack' });

const packListResponse = z.object({ packs: z.array(packResponse) }).meta({ id: 'PackList' });

const present = ({ id, name, credits, priceCents, currency }: Pack) => ({
  id,
  name,
  credits,
  amountCents: priceCents,
  currency,
});

export const packRoutes = [
  defineRoute({
    method: 'get',
    path: '/v1/packs',
    role: 'read',
    summary: 'List the credit packs for sale',
    responses: { 200: ['The active catalog.', packListResponse] },
    errors: {},
    handler: async ({ deps }) => ({
      status: 200,
      body: { packs: (await listActivePacks(deps.sql)).map(present) },
    }),
  }),
];
