-- Up Migration

-- What operators did (review decisions, manual grants and voids): who, what, when, the state
-- before and after, and why. Append-only: the trigger below refuses every UPDATE, DELETE and
-- TRUNCATE, whoever asks, so a row once written stays as it was written.
CREATE TABLE audit_log (
  id      bigserial PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  -- The name of the API key that acted (BILLING_API_KEYS), never the key itself.
  actor   text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  action  text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
  -- What it acted on: `grant:<id>`, `workflow:<workflow ID>`…
  subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
  before  jsonb,
  after   jsonb,
  reason  text CHECK (length(reason) <= 2000)
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, id DESC);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP
    USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- The review desk finds the purchase a held workflow recorded by the workflow's ID. (A plain
-- build: one scan of purchases, while writers wait; the migration runs in one transaction.)
CREATE INDEX purchases_workflow_idx ON purchases (workflow_id);

-- Down Migration
-- Forward-only.
