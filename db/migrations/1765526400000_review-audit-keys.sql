-- Up Migration

-- A review decision is recorded by the activity that applies it, in the transaction of its
-- effect (the grant, the closing), so the decision and its audit row commit together or not at
-- all. An activity can run again after its first attempt committed (its completion lost); the
-- key (`review:<workflow ID>:<n>`, one per decision a run takes) lets it find the row it wrote
-- instead of writing a second. Grants and voids, audited in their own requests, leave it null.
-- Adding a column runs no row trigger: the table stays append-only.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS key text UNIQUE CHECK (length(key) BETWEEN 1 AND 400);

-- Down Migration
-- Forward-only.
