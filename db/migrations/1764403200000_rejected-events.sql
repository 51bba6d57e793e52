-- Up Migration

-- Signed Stripe events that can never be processed (a shape or a value past Stripe's limits, a
-- start Temporal refuses as invalid). They are answered 2xx, so Stripe stops retrying, and kept
-- here for operators, with a bounded excerpt of the payload.
CREATE TABLE rejected_events (
  id               bigserial PRIMARY KEY,
  event_id         text NOT NULL UNIQUE CHECK (length(event_id) <= 300),
  event_type       text CHECK (length(event_type) <= 100),
  reason_code      text NOT NULL,
  reason           text NOT NULL CHECK (length(reason) <= 2000),
  payload_excerpt  text NOT NULL CHECK (length(payload_excerpt) <= 4096),
  deliveries       integer NOT NULL DEFAULT 1,
  first_received_at timestamptz NOT NULL DEFAULT now(),
  last_received_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
-- Forward-only.
