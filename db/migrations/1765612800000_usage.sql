-- Up Migration

-- The feature catalogue, synced from config/catalog/features.json as the packs are: a retired
-- feature is deactivated, never deleted, so that its events and ledger rows keep their meaning.
-- A price is `credits` per `units` (1 credit per 1,000 tokens: 1 / 1000; 5 credits per image:
-- 5 / 1); `overdraft` says whether usage beyond the available credits is refused or owed.
CREATE TABLE features (
  key        text PRIMARY KEY CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  name       text NOT NULL,
  credits    bigint NOT NULL CHECK (credits > 0),
  units      bigint NOT NULL CHECK (units > 0),
  overdraft  text NOT NULL CHECK (overdraft IN ('refuse', 'allow')),
  active     boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Usage events, append-only: each counts once per (account, event ID), forever. A request's
-- events of one account and feature burn their credits in one ledger row (`ledger_entry_id`),
-- which was written in the same transaction: its `created_at` is the events' `received_at`, so
-- the listing index also leads from a ledger row to its events. No foreign keys: the transaction
-- that inserts holds the account's balance row (so the account exists) and has read the feature,
-- and a per-row check would cost as much as the insert itself.
--
-- `fingerprint` is a digest of what the client sent (feature, quantity, timestamp, properties,
-- reservation): the same event ID with another body is a conflict, not a duplicate. Retention
-- (USAGE_EVENT_RETENTION) clears `properties` of old events; the row itself stays, so a replay
-- of an old event is still recognised.
CREATE TABLE usage_events (
  seq             bigserial NOT NULL,
  account_id      text NOT NULL,
  event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
  feature         text NOT NULL,
  quantity        bigint NOT NULL CHECK (quantity > 0),
  occurred_at     timestamptz NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  properties      jsonb,
  fingerprint     bytea NOT NULL,
  -- What this event burned: its share of the ledger row, after fractional accrual.
  credits         bigint NOT NULL CHECK (credits >= 0),
  ledger_entry_id bigint,
  reservation_id  text,
  PRIMARY KEY (account_id, event_id)
);
CREATE INDEX usage_events_account_idx ON usage_events (account_id, received_at DESC, seq DESC);
-- The retention sweep walks events by the time they were received: a block-range index, which
-- costs an insert next to nothing (rows arrive in that order).
CREATE INDEX usage_events_received_idx ON usage_events USING brin (received_at);

-- How far the retention sweep got: events received before `swept_before` keep no properties.
CREATE TABLE usage_retention (
  one          boolean PRIMARY KEY DEFAULT true CHECK (one),
  swept_before timestamptz NOT NULL DEFAULT '-infinity',
  swept_at     timestamptz
);
INSERT INTO usage_retention DEFAULT VALUES;

-- Fractional accrual: per account and feature, the units used at the feature's current price,
-- `{"<feature>": {"credits": c, "units": n, "quantity": "<units>"}}`. After every request the
-- credits burned for them are exactly floor(quantity × c / n), so no event is rounded up and the
-- credits burned never pass the usage priced once. A new price starts counting afresh. Kept on
-- the balance row, which every usage request locks and writes anyway: no row of its own to read
-- and write per account. Only prices whose units do not divide their credits need a meter.
ALTER TABLE credit_balances ADD COLUMN usage_meters jsonb NOT NULL DEFAULT '{}';

-- Usage of a feature that allows debt takes what the live credits cannot cover as debt of one
-- overdraft grant per account (business key `overdraft:<account>`): amount = drawn = owed + repaid,
-- nothing remaining. New credits repay it as they repay any grant's debt.
ALTER TABLE credit_grants DROP CONSTRAINT credit_grants_source_check;
ALTER TABLE credit_grants ADD CONSTRAINT credit_grants_source_check
  CHECK (source IN ('purchase', 'subscription', 'promotional', 'manual', 'migration', 'overdraft'));

-- A hold never holds more than the account's live credits (less its debt) can cover: when an
-- expiry, a void or a revocation takes credits a hold was holding, the hold shrinks by the
-- shortfall (`shrunk`, with the reason); one that holds nothing any more is released.
ALTER TABLE credit_reservations ADD COLUMN shrunk bigint NOT NULL DEFAULT 0 CHECK (shrunk >= 0);
ALTER TABLE credit_reservations ADD COLUMN shrink_reason text;
ALTER TABLE credit_reservations ADD COLUMN shrunk_at timestamptz;
ALTER TABLE credit_reservations ADD CONSTRAINT credit_reservations_shrink_check
  CHECK (shrunk <= amount AND (captured IS NULL OR captured <= amount - shrunk));
CREATE INDEX credit_reservations_held_idx ON credit_reservations (account_id, created_at DESC)
  WHERE status = 'held';

-- Usage writes one ledger row and one allocation per account and feature of every request, so
-- what each of those rows costs is what a request costs. Their foreign keys checked, row by row,
-- what the engine already holds: every movement is written under the lock of the account's
-- balance row (itself a foreign key to the account) and allocates only grants it read under that
-- lock; accounts and grants are never deleted. `npm run verify:ledger` checks that no ledger row
-- or allocation names an account or grant that does not exist.
ALTER TABLE credit_ledger DROP CONSTRAINT IF EXISTS credit_ledger_account_id_fkey;
ALTER TABLE credit_allocations DROP CONSTRAINT IF EXISTS credit_allocations_grant_id_fkey;
ALTER TABLE credit_allocations DROP CONSTRAINT IF EXISTS credit_allocations_debtor_grant_id_fkey;

-- The balance row is updated by every movement (and now carries the meters): room on each page
-- for those updates to stay on it.
ALTER TABLE credit_balances SET (fillfactor = 80);

-- Down Migration
-- Forward-only.
