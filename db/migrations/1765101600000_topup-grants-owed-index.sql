-- Up Migration

-- The owed top-up grants gauges (how many top-ups were paid but not granted, and since when) are
-- read on every metrics scrape: a partial index keeps that a look at the few owed rows, not a
-- scan of every top-up ever made.
CREATE INDEX topups_grant_owed_idx ON topups (updated_at)
  WHERE status = 'failed' AND failure_code = 'grant_failed';

-- Down Migration
DROP INDEX topups_grant_owed_idx;
