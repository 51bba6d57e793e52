-- Up Migration

-- Every credit that enters an account belongs to a grant; debits, expiry, refunds and disputes
-- name the grants they touch. The columns below always add up:
--   amount = remaining + drawn + expired + voided + revoked_remaining
-- `drawn` is what usage (debits, captures, repayments of another grant's debt) took from it;
-- `revoked_remaining` what refunds and disputes took from what was left. When a reversal must
-- take back credits that were already spent, that part is `owed` (debt) until other grants
-- repay it (`repaid`). Balance = Σ remaining − Σ owed, and equals the ledger sum.
CREATE TABLE credit_grants (
  id                bigserial PRIMARY KEY,
  account_id        text NOT NULL REFERENCES accounts (id),
  source            text NOT NULL CHECK (source IN ('purchase', 'subscription', 'promotional', 'manual', 'migration')),
  category          text NOT NULL CHECK (category IN ('paid', 'promotional')),
  -- Lower is drawn first.
  priority          integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
  effective_at      timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz,
  amount            bigint NOT NULL CHECK (amount > 0),
  remaining         bigint NOT NULL CHECK (remaining >= 0),
  drawn             bigint NOT NULL DEFAULT 0 CHECK (drawn >= 0),
  expired           bigint NOT NULL DEFAULT 0 CHECK (expired >= 0),
  voided            bigint NOT NULL DEFAULT 0 CHECK (voided >= 0),
  revoked_remaining bigint NOT NULL DEFAULT 0 CHECK (revoked_remaining >= 0),
  owed              bigint NOT NULL DEFAULT 0 CHECK (owed >= 0),
  repaid            bigint NOT NULL DEFAULT 0 CHECK (repaid >= 0),
  -- Set once, when the grant expired or was voided: nothing is drawn from it afterwards.
  closed_at         timestamptz,
  closed_reason     text CHECK (closed_reason IN ('expired', 'voided')),
  -- The ledger key of the movement that created the grant (the purchase, invoice, grant request).
  business_key      text NOT NULL UNIQUE,
  reason            text,
  created_by        text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (amount = remaining + drawn + expired + voided + revoked_remaining),
  CHECK ((closed_at IS NULL) = (closed_reason IS NULL))
);
-- The draw-down order of live grants, and the expiry sweep.
CREATE INDEX credit_grants_drawdown_idx ON credit_grants (account_id, priority, expires_at, effective_at, id)
  WHERE closed_at IS NULL AND remaining > 0;
CREATE INDEX credit_grants_due_idx ON credit_grants (expires_at) WHERE closed_at IS NULL AND expires_at IS NOT NULL;
CREATE INDEX credit_grants_owed_idx ON credit_grants (account_id, id) WHERE owed > 0;
CREATE INDEX credit_grants_account_idx ON credit_grants (account_id, id DESC);

-- Which grant each movement took from (positive) or gave back to (negative). A repayment of
-- another grant's debt names that grant as `debtor_grant_id`, so a won dispute can undo it.
CREATE TABLE credit_allocations (
  id              bigserial PRIMARY KEY,
  business_key    text NOT NULL,
  grant_id        bigint NOT NULL REFERENCES credit_grants (id),
  amount          bigint NOT NULL CHECK (amount <> 0),
  debtor_grant_id bigint REFERENCES credit_grants (id),
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_allocations_key_idx ON credit_allocations (business_key);
CREATE INDEX credit_allocations_debtor_idx ON credit_allocations (debtor_grant_id, id) WHERE debtor_grant_id IS NOT NULL;

-- Credits on hold: available = balance − held. Captured (all or part) into a debit, released,
-- or released when the TTL passes.
ALTER TABLE credit_balances ADD COLUMN held bigint NOT NULL DEFAULT 0 CHECK (held >= 0);

CREATE TABLE credit_reservations (
  id              text PRIMARY KEY,
  account_id      text NOT NULL REFERENCES accounts (id),
  amount          bigint NOT NULL CHECK (amount > 0),
  status          text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'captured', 'released', 'expired')),
  captured        bigint CHECK (captured > 0 AND captured <= amount),
  idempotency_key text NOT NULL,
  expires_at      timestamptz NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  settled_at      timestamptz,
  UNIQUE (account_id, idempotency_key)
);
CREATE INDEX credit_reservations_due_idx ON credit_reservations (expires_at) WHERE status = 'held';

-- What a money activity answered, by the business key it moved and the workflow that moved it:
-- a retry of that workflow's activity answers the same, whatever happened since.
CREATE TABLE movement_outcomes (
  business_key text PRIMARY KEY,
  workflow_id  text NOT NULL,
  outcome      jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- A plan says whether the unused credits of its periods expire when the subscription ends.
ALTER TABLE subscription_plans ADD COLUMN expire_on_cancel boolean NOT NULL DEFAULT false;

-- The grant each purchase created, for refunds and disputes.
ALTER TABLE purchases ADD COLUMN grant_id bigint REFERENCES credit_grants (id);

-- Who recorded the outbox row, so a sweep can tell what it is for.
ALTER TABLE email_outbox ADD COLUMN workflow_id text;
CREATE INDEX email_outbox_pending_idx ON email_outbox (created_at) WHERE status = 'pending';

-- Currencies are compared as Stripe writes them, lowercase; older rows may not be.
UPDATE purchases SET currency = lower(currency) WHERE currency <> lower(currency);

-- Debit keys were `debit:<account>:<key>` with ':' allowed in both parts, so two accounts could
-- share a key. In the account part '%' and ':' are now percent-encoded (see db/debits.ts), so the
-- first ':' after the prefix ends the account.
UPDATE credit_ledger
SET business_key = 'debit:' || replace(replace(account_id, '%', '%25'), ':', '%3A') || ':'
                   || substr(business_key, length('debit:' || account_id || ':') + 1)
WHERE kind = 'debit' AND starts_with(business_key, 'debit:' || account_id || ':')
  AND account_id ~ '[%:]';

-- Existing balances become grants, with no balance change. Each granted purchase gets its own
-- grant (so later refunds and disputes find it), holding nothing: what it gave is counted as
-- drawn or, for ended periods, expired. The balance itself moves to one migration grant
-- without expiry; a negative balance becomes that grant's debt.
INSERT INTO credit_grants (account_id, source, category, priority, effective_at, expires_at, amount, remaining,
                           drawn, expired, repaid, business_key, reason, created_at)
SELECT p.account_id,
       CASE WHEN p.kind = 'invoice' THEN 'subscription' ELSE 'purchase' END,
       'paid', 100, l.created_at, NULL, l.delta, 0,
       l.delta - LEAST(l.delta, COALESCE(-e.delta, 0)),
       LEAST(l.delta, COALESCE(-e.delta, 0)),
       LEAST(COALESCE(r.revoked_credits, 0), l.delta - LEAST(l.delta, COALESCE(-e.delta, 0))),
       l.business_key, 'migrated', l.created_at
FROM purchases p
JOIN credit_ledger l ON l.id = p.ledger_entry_id AND l.delta > 0
LEFT JOIN credit_ledger e ON e.business_key = 'expiry:' || p.id
LEFT JOIN purchase_reversals r ON r.purchase_id = p.id
WHERE p.status = 'completed';
UPDATE purchases p SET grant_id = g.id
FROM credit_grants g JOIN credit_ledger l ON l.business_key = g.business_key
WHERE l.id = p.ledger_entry_id;

INSERT INTO credit_grants (account_id, source, category, priority, amount, remaining, drawn, owed,
                           business_key, reason)
SELECT account_id, 'migration', 'paid', 100, abs(balance), GREATEST(balance, 0), GREATEST(-balance, 0),
       GREATEST(-balance, 0), 'migration:' || account_id, 'balance before credit grants'
FROM credit_balances WHERE balance <> 0;

-- Down Migration
-- Forward-only.
