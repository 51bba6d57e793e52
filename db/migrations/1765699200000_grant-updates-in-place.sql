-- Up Migration

-- Every draw updates a grant's `remaining`. An index whose predicate names `remaining` makes each
-- such update a non-HOT update: a new entry in every index of the table, and index scans that
-- wade through the dead ones. The draw-down and expiry-notice indexes therefore select on
-- `has_credits`, which changes only when a grant runs out (or is given credits back), so that an
-- ordinary draw is written in place. The same holds for the balance rows, which every movement
-- updates: both tables keep room on their pages for the new versions of their rows.
ALTER TABLE credit_grants ADD COLUMN IF NOT EXISTS has_credits boolean GENERATED ALWAYS AS (remaining > 0) STORED;

DROP INDEX IF EXISTS credit_grants_drawdown_idx;
CREATE INDEX credit_grants_drawdown_idx ON credit_grants (account_id, priority, expires_at, effective_at, id)
  WHERE closed_at IS NULL AND has_credits;

DROP INDEX IF EXISTS credit_grants_expiry_notice_idx;
CREATE INDEX credit_grants_expiry_notice_idx ON credit_grants (expires_at)
  WHERE closed_at IS NULL AND expiry_notice_at IS NULL AND has_credits AND expires_at IS NOT NULL;

ALTER TABLE credit_grants SET (fillfactor = 80);
ALTER TABLE credit_balances SET (fillfactor = 80);

-- Down Migration
-- Forward-only.
