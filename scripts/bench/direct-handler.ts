import express from 'express';
import { verifyStripeSignature } from '../../stripe/signature';
import { loadPackCatalog } from '../../db/catalog/packs';
import { createSql } from '../../db/client';
import { grantPurchaseCredits } from '../../db/purchases/grants';
import { purchaseGrantFor } from '../../domain/purchase-rules';
import { summarizeCheckoutSession } from '../../stripe/objects';

/**
 * The benchmark's direct handler: what a webhook costs without Temporal. It verifies the Stripe
 * signature on the raw body, then makes the purchase's grant (the service's own transaction:
 * grant, ledger row, balance, purchase, receipt queued) before it answers. No validation against
 * a snapshot, no retries, no receipt sent: a floor to compare with, not a way to run the service.
 *
 *   DATABASE_URL=… STRIPE_WEBHOOK_SECRET=… PORT=… node --import tsx scripts/bench/direct-handler.ts
 */
const sql = createSql(process.env.DATABASE_URL ?? '');
const secrets = [process.env.STRIPE_WEBHOOK_SECRET ?? ''];
const packs = new Map(loadPackCatalog().packs.map((pack) => [pack.id, pack]));

const app = express();
app.post('/webhooks/stripe', express.raw({ type: () => true, limit: 256 * 1024 }), async (req, res) => {
  try {
    const event = verifyStripeSignature(req.body as Buffer, req.get('stripe-signature'), secrets) as {
      id: string;
      data: { object: unknown };
    };
    const session = summarizeCheckoutSession(event.data.object);
    const pack = session.packId ? packs.get(session.packId) : undefined;
    if (!pack || !session.accountId) {
      res.status(400).json({ error: { code: 'unknown_pack_or_account' } });
      return;
    }
    const outcome = await grantPurchaseCredits(
      sql,
      purchaseGrantFor(
        session,
        { accountId: session.accountId, packId: pack.id, packName: pack.name, credits: pack.credits },
        event.id,
      ),
    );
    res.json({ received: true, status: 'granted', ledgerEntryId: outcome.ledgerEntryId });
  } catch (error) {
    res.status(500).json({ error: { code: 'direct_failed', message: (error as Error).message } });
  }
});

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write('direct handler listening\n');
});
const stop = () => {
  server.close(() => void sql.end({ timeout: 5 }).then(() => process.exit(0)));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
