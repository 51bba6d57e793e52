-- Up Migration

-- Low-balance notices. `armed` is true while the available balance (balance − held) is at or
-- above the threshold; the movement that takes it below flips it in its own transaction, under
-- the account's lock, so a crossing is noticed exactly once however many debits race for it.
CREATE TABLE low_balance_settings (
  account_id     text PRIMARY KEY REFERENCES accounts (id),
  threshold      bigint NOT NULL CHECK (threshold > 0),
  armed          boolean NOT NULL,
  notices        bigint NOT NULL DEFAULT 0 CHECK (notices >= 0),
  last_notice_at timestamptz,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Automatic top-up: what to buy when the available balance goes below the threshold. The price
-- of custom credits is the one quoted when the settings were saved; a pack's is the catalog's.
CREATE TABLE topup_settings (
  account_id               text PRIMARY KEY REFERENCES accounts (id),
  enabled                  boolean NOT NULL,
  threshold                bigint NOT NULL CHECK (threshold > 0),
  pack_id                  text REFERENCES credit_packs (id),
  credits                  bigint NOT NULL CHECK (credits > 0),
  amount_cents             bigint NOT NULL CHECK (amount_cents > 0),
  currency                 text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  monthly_cap_cents        bigint NOT NULL CHECK (monthly_cap_cents > 0),
  max_consecutive_failures integer NOT NULL DEFAULT 3 CHECK (max_consecutive_failures BETWEEN 1 AND 20),
  consecutive_failures     integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  -- As for low_balance_settings; a failed attempt arms it again, so the next debit retries.
  armed                    boolean NOT NULL,
  disabled_reason          text,
  disabled_at              timestamptz,
  -- Why the last crossing started no top-up (the monthly cap), for the settings view.
  last_skipped_reason      text,
  updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE topups_seq;

-- One row per attempt. The partial unique index allows one open top-up per account, and the
-- monthly cap counts every top-up of the month that may have taken money (all but `failed`).
CREATE TABLE topups (
  id                text PRIMARY KEY DEFAULT 'topup_' || nextval('topups_seq'),
  account_id        text NOT NULL REFERENCES accounts (id),
  pack_id           text,
  credits           bigint NOT NULL CHECK (credits > 0),
  amount_cents      bigint NOT NULL CHECK (amount_cents > 0),
  currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  month             date NOT NULL,
  status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'charging', 'succeeded', 'failed', 'refused')),
  payment_intent_id text UNIQUE,
  failure_code      text,
  failure_message   text CHECK (length(failure_message) <= 1000),
  recovery_url      text,
  ledger_entry_id   bigint,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX topups_one_open_per_account ON topups (account_id) WHERE status IN ('pending', 'charging');
CREATE INDEX topups_account_month_idx ON topups (account_id, month);

-- Work a balance movement asks for (deliver a notice, run a top-up), written in the movement's
-- transaction and started after it commits; the maintenance schedule starts any left behind.
CREATE TABLE balance_follow_ups (
  workflow_id   text PRIMARY KEY,
  account_id    text NOT NULL REFERENCES accounts (id),
  workflow_type text NOT NULL,
  input         jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz
);
CREATE INDEX balance_follow_ups_unstarted_idx ON balance_follow_ups (account_id) WHERE started_at IS NULL;

-- A top-up is a purchase too: refunds and disputes find it by its payment intent.
ALTER TABLE purchases DROP CONSTRAINT purchases_kind_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_kind_check CHECK (kind IN ('checkout_session', 'invoice', 'topup'));

-- Down Migration
-- Forward-only.
