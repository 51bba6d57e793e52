-- Up Migration

-- The review desk's gauges (how many purchases wait for a human, and since when) are read on
-- every metrics scrape: a partial index keeps that a look at the few held rows, not a scan of
-- every purchase ever made.
CREATE INDEX purchases_held_for_review_idx ON purchases (kind, updated_at)
  WHERE status = 'held_for_review';

-- Down Migration
DROP INDEX purchases_held_for_review_idx;
