-- Up Migration

-- Reconciliation with Stripe's Events API. A watermark says up to when every listed event has
-- been handed to Temporal; a run records what it read, page by page, so that a retried page
-- answers what it first answered and an operator can see what each run found.
CREATE TABLE reconcile_watermarks (
  name        text PRIMARY KEY,
  watermark   timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconcile_runs (
  id              bigserial PRIMARY KEY,
  -- The workflow ID and the first run ID of its chain: the same across retries and continue-as-new.
  run_key         text NOT NULL UNIQUE,
  -- The watermark the run moves on; NULL for a backfill, which moves none.
  watermark_name  text,
  window_from     timestamptz NOT NULL,
  window_until    timestamptz NOT NULL,
  type_groups     jsonb NOT NULL,
  slice_seconds   integer NOT NULL CHECK (slice_seconds > 0),
  status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
  pages           integer NOT NULL DEFAULT 0,
  events          integer NOT NULL DEFAULT 0,
  started         integer NOT NULL DEFAULT 0,
  duplicates      integer NOT NULL DEFAULT 0,
  ignored         integer NOT NULL DEFAULT 0,
  rejected        integer NOT NULL DEFAULT 0,
  error           text,
  started_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);

CREATE INDEX reconcile_runs_started_at ON reconcile_runs (started_at DESC);

CREATE TABLE reconcile_pages (
  run_id          bigint NOT NULL REFERENCES reconcile_runs (id),
  slice           integer NOT NULL,
  type_group      integer NOT NULL,
  page            integer NOT NULL,
  events          integer NOT NULL,
  started         integer NOT NULL,
  duplicates      integer NOT NULL,
  ignored         integer NOT NULL,
  rejected        integer NOT NULL,
  -- The events this page started: those whose webhook never started them.
  started_events  jsonb NOT NULL,
  next_cursor     text,
  watermark       timestamptz,
  read_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, slice, type_group, page)
);

-- Down Migration
-- Forward-only.
