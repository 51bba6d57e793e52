-- Up Migration

-- Secret rotation with an overlap: the key a rotation replaced, sealed as the current one is
-- (db/outbound-webhooks/endpoint-secrets.ts), keeps signing beside it until
-- `previous_secret_expires_at`, so a receiver can change its secret without rejecting a delivery.
-- The previous release ignores these columns: it signs with the current key only.
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS previous_secret_sealed bytea;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS previous_secret_key_id text;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS previous_secret_expires_at timestamptz;
ALTER TABLE webhook_endpoints DROP CONSTRAINT IF EXISTS webhook_endpoints_previous_secret_stored;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_previous_secret_stored CHECK (
  (previous_secret_sealed IS NULL) = (previous_secret_key_id IS NULL)
  AND (previous_secret_sealed IS NULL) = (previous_secret_expires_at IS NULL)
);

-- Down Migration
-- Forward-only.
