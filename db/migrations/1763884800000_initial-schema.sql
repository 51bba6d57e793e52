-- Up Migration

-- Accounts are identified by the client's own ID; we never mint them.
CREATE TABLE accounts (
  id                 text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  email              text NOT NULL,
  stripe_customer_id text UNIQUE,
  created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_balances (
  account_id text PRIMARY KEY REFERENCES accounts (id),
  balance    bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The catalog is synced from config/catalog; a retired pack is deactivated, never deleted,
-- so purchases and ledger rows that name it keep their meaning.
CREATE TABLE credit_packs (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  credits     bigint NOT NULL CHECK (credits > 0),
  price_cents bigint NOT NULL CHECK (price_cents > 0),
  currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  active      boolean NOT NULL DEFAULT true,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row: the catalog version applied last, so an older replica cannot roll a newer one back.
CREATE TABLE catalog_state (
  name       text PRIMARY KEY,
  version    integer NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per business payment (a checkout session today), whatever number of events describe it.
CREATE TABLE purchases (
  id              text PRIMARY KEY,
  kind            text NOT NULL CHECK (kind IN ('checkout_session')),
  account_id      text,
  pack_id         text,
  credits         bigint,
  amount_cents    bigint,
  currency        text,
  livemode        boolean NOT NULL,
  status          text NOT NULL CHECK (status IN (
                    'awaiting_payment', 'held_for_review', 'completed', 'rejected', 'review_expired')),
  reason_code     text,
  reason          text,
  workflow_id     text NOT NULL,
  ledger_entry_id bigint,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purchases_account_idx ON purchases (account_id, created_at DESC);

-- Append-only. The UNIQUE business key is what makes every credit movement happen exactly once.
CREATE TABLE credit_ledger (
  id            bigserial PRIMARY KEY,
  account_id    text NOT NULL REFERENCES accounts (id),
  delta         bigint NOT NULL CHECK (delta <> 0),
  kind          text NOT NULL,
  business_key  text NOT NULL UNIQUE,
  reason        text,
  balance_after bigint NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_account_idx ON credit_ledger (account_id, id DESC);

-- Receipts are rendered when the grant commits and delivered afterwards; one row per grant.
CREATE TABLE email_outbox (
  id          bigserial PRIMARY KEY,
  key         text NOT NULL UNIQUE,
  account_id  text REFERENCES accounts (id),
  to_address  text NOT NULL,
  subject     text NOT NULL,
  body_text   text NOT NULL,
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  attempts    integer NOT NULL DEFAULT 0,
  last_error  text,
  message_id  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz
);

-- Down Migration
-- Forward-only: a release that needs to undo a change ships a new migration.
