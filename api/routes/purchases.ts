import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { CheckoutSnapshot } from '../../db/purchases/checkout-sessions';
import type { Sql } from '../../db/client';
import { findPurchase, type Purchase } from '../../db/purchases/purchases';
import { PURCHASE_RECORD_STATUSES } from '../../domain/purchase-records';
import { statusQuery, type PurchaseWorkflowStatus } from '../../workflows/purchases/contract';
import { errors } from '../errors';
import { accountId, idempotencyKey, packId, positiveCount } from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { openCheckoutSession } from './checkout';

/** Selling credits: a Stripe Checkout Session, then where the purchase it led to is. */

// --- schemas ------------------------------------------------------------------------------

// The parsed body is the request's fingerprint for its Idempotency-Key (api/routes/checkout.ts):
// changing the fields' order would make a replay look like another request.
const createCheckoutBody = z
  .strictObject({
    accountId,
    packId: packId.optional().meta({ description: 'A pack from GET /v1/packs.', example: 'starter' }),
    credits: positiveCount.optional().meta({ description: 'A custom number of credits, instead of a pack.' }),
    successUrl: z.url({ protocol: /^https?$/ }).meta({ example: 'https://app.example.com/billing/success' }),
    cancelUrl: z.url({ protocol: /^https?$/ }).meta({ example: 'https://app.example.com/billing' }),
    savePaymentMethod: z.boolean().optional().meta({
      description: 'Save the card for automatic top-ups (a Stripe customer is created once per account).',
    }),
  })
  .refine((body) => (body.packId === undefined) !== (body.credits === undefined), {
    message: 'give exactly one of packId and credits',
    path: ['packId'],
  })
  .meta({ id: 'CreateCheckoutSession' });

const checkoutHeaders = z.object({ 'idempotency-key': idempotencyKey.optional() });

// A purchase is identified by its checkout session or, for a subscription period, its invoice.
const purchaseParams = z.object({
  checkoutSessionId: z
    .string()
    .regex(/^(cs|in)_\w{1,200}$/, 'a checkout session ID (cs_…) or an invoice ID (in_…)')
    .meta({ example: 'cs_test_a1b2c3' }),
});

const checkoutResponse = z
  .object({
    id: z.string(),
    url: z.string().nullable(),
    credits: z.number().int(),
    amountCents: z.number().int(),
    currency: z.string(),
  })
  .meta({ id: 'CheckoutSession' });

const purchaseResponse = z
  .object({
    id: z.string(),
    status: z.enum(PURCHASE_RECORD_STATUSES),
    credits: z.number().int().nullable(),
    accountId: z.string().nullable(),
    packId: z.string().nullable(),
    reasonCode: z.string().nullable(),
    reason: z.string().nullable(),
    workflowId: z.string(),
    ledgerEntryId: z.number().int().nullable(),
    updatedAt: z.iso.datetime(),
    workflow: z.record(z.string(), z.unknown()).nullable().meta({
      description: 'While the workflow runs: what its `status` query says (stage, reason, receipt).',
    }),
  })
  .meta({ id: 'Purchase' });

// --- operations ---------------------------------------------------------------------------

const QUERY_TIMEOUT_MS = 2000;

/** What a still-running purchase workflow says of itself; null once it has finished or is unreachable. */
async function liveStatus(temporal: Client, workflowId: string): Promise<PurchaseWorkflowStatus | null> {
  try {
    return await temporal.withDeadline(Date.now() + QUERY_TIMEOUT_MS, async () => {
      const handle = temporal.workflow.getHandle(workflowId);
      const { status } = await handle.describe();
      return status.name === 'RUNNING' ? await handle.query(statusQuery) : null;
    });
  } catch {
    // The stored record is the answer; the live view is a bonus.
    return null;
  }
}

/** The stored purchase and, unless it is completed, what its workflow says now. */
async function trackPurchase(
  { sql, temporal }: { sql: Sql; temporal: Client },
  id: string,
): Promise<{ purchase: Purchase; workflow: PurchaseWorkflowStatus | null }> {
  const purchase = await findPurchase(sql, id);
  if (!purchase) throw errors.purchaseNotFound(id);
  const workflow = purchase.status === 'completed' ? null : await liveStatus(temporal, purchase.workflowId);
  return { purchase, workflow };
}

// --- presenting ---------------------------------------------------------------------------

const presentCheckout = (snapshot: CheckoutSnapshot) => ({
  id: snapshot.id,
  url: snapshot.url,
  credits: snapshot.credits,
  amountCents: snapshot.amountCents,
  currency: snapshot.currency,
});

const presentPurchase = ({ purchase, workflow }: Awaited<ReturnType<typeof trackPurchase>>) => ({
  id: purchase.id,
  status: purchase.status,
  credits: purchase.credits,
  accountId: purchase.accountId,
  packId: purchase.packId,
  reasonCode: purchase.reasonCode,
  reason: purchase.reason,
  workflowId: purchase.workflowId,
  ledgerEntryId: purchase.ledgerEntryId,
  updatedAt: purchase.updatedAt.toISOString(),
  workflow,
});

// --- routes -------------------------------------------------------------------------------

export const purchaseRoutes = [
  defineRoute({
    method: 'post',
    path: '/v1/checkout/sessions',
    role: 'write',
    summary: 'Create a Stripe Checkout Session for a pack or a custom number of credits',
    replays: 'the same `Idempotency-Key` with the same body',
    body: createCheckoutBody,
    headers: checkoutHeaders,
    responses: {
      201: ['The session to redirect the customer to; its price is the server\u2019s.', checkoutResponse],
    },
    errors: {
      400: '`invalid_request` (including credits outside the configured range).',
      404: '`account_not_found` or `pack_not_found`.',
      409:
        'The Idempotency-Key was used with other parameters (`idempotency_key_reused`); `details` name the ' +
        'session it made: `checkoutSessionId`, `credits`, `amountCents`, `currency`.',
      422: 'A redirect URL is not on an allowed host (`redirect_url_not_allowed`).',
      502: 'Stripe refused the request (`stripe_error`, with `details.stripeCode`).',
      503: 'No Stripe key configured (`stripe_not_configured`).',
    },
    handler: async ({ body, headers, deps }) => {
      const { snapshot, replayed } = await openCheckoutSession(deps, body, headers['idempotency-key']);
      return { status: 201, body: presentCheckout(snapshot), replayed };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/purchases/:checkoutSessionId',
    role: 'read',
    summary: 'Where a purchase is',
    params: purchaseParams,
    responses: { 200: ['The purchase.', purchaseResponse] },
    errors: { 404: '`purchase_not_found`.' },
    handler: async ({ params, deps }) => ({
      status: 200,
      body: presentPurchase(await trackPurchase(deps, params.checkoutSessionId)),
    }),
  }),
];
