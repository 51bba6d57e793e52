-- Up Migration

-- What the retention sweep reads: rows by age, and an event's deliveries (also what deleting an
-- event checks its foreign key against).
CREATE INDEX IF NOT EXISTS outbound_events_created_idx ON outbound_events (created_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_event_idx ON webhook_deliveries (event_id);
CREATE INDEX IF NOT EXISTS email_outbox_created_idx ON email_outbox (created_at);
CREATE INDEX IF NOT EXISTS rejected_events_last_received_idx ON rejected_events (last_received_at);

-- Down Migration
-- Forward-only.
