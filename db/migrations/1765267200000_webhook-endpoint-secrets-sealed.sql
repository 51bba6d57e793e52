-- Up Migration

-- Endpoint secrets at rest are sealed with the payload key ring (TEMPORAL_PAYLOAD_KEYS): AES-256-GCM,
-- the ciphertext (nonce, ciphertext, tag) in `secret_sealed` and the ID of the key that sealed it
-- in `secret_key_id` (db/outbound-webhooks/endpoint-secrets.ts). SQL cannot seal (the key ring is
-- the processes' own), so the rows stored in clear are sealed by the application: by the API and
-- the worker when they start, and by the dispatcher when it meets one; each keeps the key bytes it
-- had, so receivers notice nothing. `secret` is then NULL, and is kept only for those rows.
--
-- Beside the previous release: its API still writes clear secrets, which this release seals; its
-- worker cannot sign for an endpoint this release sealed: those attempts fail, are retried, and go
-- out once this release's worker runs. Nothing is lost.
ALTER TABLE webhook_endpoints ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS secret_sealed bytea;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS secret_key_id text;
ALTER TABLE webhook_endpoints DROP CONSTRAINT IF EXISTS webhook_endpoints_secret_stored;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_secret_stored CHECK (
  (secret_sealed IS NULL) = (secret_key_id IS NULL) AND (secret IS NOT NULL OR secret_sealed IS NOT NULL)
);

-- Down Migration
-- Forward-only.
