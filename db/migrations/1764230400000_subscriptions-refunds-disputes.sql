-- Up Migration

-- Subscription plans, synced from config/catalog/plans.json like the packs. A plan grants
-- credits once per paid billing period; `rollover` says whether unused ones outlive the period.
-- Retired plans are deactivated, never deleted.
CREATE TABLE subscription_plans (
  id                 text PRIMARY KEY,
  name               text NOT NULL,
  stripe_price_id    text NOT NULL UNIQUE,
  credits_per_period bigint NOT NULL CHECK (credits_per_period > 0),
  price_cents        bigint NOT NULL CHECK (price_cents >= 0),
  currency           text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  billing_interval   text NOT NULL CHECK (billing_interval IN ('day', 'week', 'month', 'year')),
  rollover           boolean NOT NULL,
  active             boolean NOT NULL DEFAULT true,
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- One row per Stripe subscription: the account our checkout session linked it to (set once),
-- and its newest known state. state_event_created is the `created` of the event that carried
-- the state, so an older delivery never overwrites a newer one.
CREATE TABLE subscriptions (
  id                   text PRIMARY KEY,
  account_id           text REFERENCES accounts (id),
  linked_by            text,
  customer_id          text,
  status               text,
  plan_id              text,
  price_id             text,
  cancel_at_period_end boolean,
  current_period_end   timestamptz,
  state_event_id       text,
  state_event_created  bigint,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_account_idx ON subscriptions (account_id);

-- A paid subscription invoice is a purchase too (kind 'invoice', ID = invoice ID), so refunds
-- and disputes find any payment through its payment intent. Checkouts that never paid are
-- marked: the delayed payment failed, or the session expired.
ALTER TABLE purchases DROP CONSTRAINT purchases_kind_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_kind_check CHECK (kind IN ('checkout_session', 'invoice'));
ALTER TABLE purchases DROP CONSTRAINT purchases_status_check;
ALTER TABLE purchases ADD CONSTRAINT purchases_status_check CHECK (status IN (
  'awaiting_payment', 'held_for_review', 'completed', 'rejected', 'review_expired',
  'payment_failed', 'expired'));

-- The billing period each invoice grant covers, and whether its unused credits expired at
-- renewal (rollover off). The expiry is its own ledger row, keyed `expiry:<invoice ID>`.
CREATE TABLE subscription_periods (
  invoice_id       text PRIMARY KEY REFERENCES purchases (id),
  subscription_id  text NOT NULL,
  account_id       text NOT NULL REFERENCES accounts (id),
  plan_id          text,
  credits          bigint NOT NULL CHECK (credits > 0),
  rollover         boolean NOT NULL,
  period_start     bigint NOT NULL,
  period_end       bigint NOT NULL,
  ledger_entry_id  bigint NOT NULL,
  expired          boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_periods_subscription_idx ON subscription_periods (subscription_id, period_start);

-- What refunds and disputes did to a granted purchase: the facts (largest cumulative amount
-- refunded, the dispute and its state) and the credits currently revoked because of them. Each
-- change of revoked_credits is one ledger row with its own business key, in one transaction.
CREATE TABLE purchase_reversals (
  purchase_id     text PRIMARY KEY REFERENCES purchases (id),
  refunded_cents  bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
  dispute_id      text,
  dispute_state   text CHECK (dispute_state IN ('open', 'won', 'lost')),
  revoked_credits bigint NOT NULL DEFAULT 0 CHECK (revoked_credits >= 0),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
-- Forward-only.
