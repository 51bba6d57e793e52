-- Up Migration

-- Clients' webhook endpoints. The secret signs every delivery; it is shown once, when the
-- endpoint is created, and never answered again.
CREATE TABLE webhook_endpoints (
  id          text PRIMARY KEY CHECK (id ~ '^we_[A-Za-z0-9]{1,64}$'),
  url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
  description text CHECK (length(description) <= 500),
  event_types text[] NOT NULL CHECK (cardinality(event_types) >= 1),
  secret      text NOT NULL,
  enabled     boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The outbound outbox: one row per event, written in the transaction of the change it reports.
-- The ID is derived from the change's business key, so a retried transaction adds nothing.
-- `seq` orders an account's events: the changes that emit them hold the account's lock.
CREATE TABLE outbound_events (
  id          text PRIMARY KEY CHECK (id ~ '^evt_[A-Za-z0-9_]{1,120}$'),
  seq         bigserial NOT NULL UNIQUE,
  type        text NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
  account_id  text NOT NULL CHECK (length(account_id) BETWEEN 1 AND 255),
  api_version text NOT NULL,
  data        jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- One delivery per endpoint and event, fanned out when the event is written (to the endpoints
-- enabled for its type at that moment).
CREATE TABLE webhook_deliveries (
  id              bigserial PRIMARY KEY,
  endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  event_id        text NOT NULL REFERENCES outbound_events (id),
  event_seq       bigint NOT NULL,
  account_id      text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  -- Retries stop this long after the window opened (its creation, or a re-send by hand).
  window_started_at timestamptz NOT NULL DEFAULT now(),
  -- The next attempt is one asked for by hand.
  resend_requested boolean NOT NULL DEFAULT false,
  delivered_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (endpoint_id, account_id, event_seq)
  WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id DESC);

-- Every attempt, automatic or by hand: what the endpoint answered and how long it took. Only a
-- short excerpt of the response body is kept.
CREATE TABLE webhook_delivery_attempts (
  id               bigserial PRIMARY KEY,
  delivery_id      bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempt          integer NOT NULL CHECK (attempt >= 1),
  attempted_at     timestamptz NOT NULL DEFAULT now(),
  succeeded        boolean NOT NULL,
  response_status  integer,
  latency_ms       integer NOT NULL CHECK (latency_ms >= 0),
  error            text CHECK (length(error) <= 300),
  response_excerpt text CHECK (length(response_excerpt) <= 300),
  manual           boolean NOT NULL DEFAULT false,
  UNIQUE (delivery_id, attempt)
);

-- Down Migration
-- Forward-only.
