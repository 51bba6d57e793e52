-- Up Migration

-- Expiry notices: before a grant with credits left expires, its account is told once (a
-- `credits.expiring` event, and an email unless the account turned those off). The notice is
-- recorded on the grant itself, under its row lock and in the transaction that queues the event
-- and the email, so that overlapping sweeps, retries and restarts notify a grant once.
ALTER TABLE credit_grants ADD COLUMN IF NOT EXISTS expiry_notice_at timestamptz;

-- The notice sweep: open grants with credits left and an expiry, not noticed yet, soonest first.
-- A grant leaves the index once noticed, spent or closed, so a sweep never reads it again.
CREATE INDEX IF NOT EXISTS credit_grants_expiry_notice_idx ON credit_grants (expires_at)
  WHERE closed_at IS NULL AND expiry_notice_at IS NULL AND remaining > 0 AND expires_at IS NOT NULL;

-- What an account's owner asked to be emailed about. No row: the defaults (every email on).
CREATE TABLE IF NOT EXISTS notification_settings (
  account_id    text PRIMARY KEY REFERENCES accounts (id),
  expiry_emails boolean NOT NULL DEFAULT true,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
-- Forward-only.
