-- Up Migration

-- What was sold, frozen when the Checkout Session was created: a payment is checked against
-- this snapshot first and the catalog second, so a later price change never breaks or cheapens
-- a session already handed out.
CREATE TABLE checkout_sessions (
  id                  text PRIMARY KEY,
  account_id          text NOT NULL REFERENCES accounts (id),
  pack_id             text REFERENCES credit_packs (id),
  credits             bigint NOT NULL CHECK (credits > 0),
  amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
  currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  url                 text,
  -- The client's Idempotency-Key (scoped to the account) and a digest of what it asked for,
  -- so a replay returns this session and a reuse with other parameters is refused.
  idempotency_key     text UNIQUE,
  request_fingerprint text NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_account_idx ON checkout_sessions (account_id, created_at DESC);

-- Our own IDs for Stripe idempotency keys when the client sends none.
CREATE SEQUENCE checkout_request_seq;

-- Down Migration
-- Forward-only.
