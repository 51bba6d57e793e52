-- Up Migration

-- Refunds and disputes name the payment intent, not the checkout session: keep the link.
ALTER TABLE purchases ADD COLUMN payment_intent_id text;
CREATE UNIQUE INDEX purchases_payment_intent_idx ON purchases (payment_intent_id) WHERE payment_intent_id IS NOT NULL;

-- Down Migration
-- Forward-only.
