import { randomUUID } from 'node:crypto';
import {
  createRetentionActivities,
  DEFAULT_RETENTION_SETTINGS,
  type RetentionSettings,
} from '../../activities/maintenance/retention';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { startHarness, type Harness } from '../support/harness';

/**
 * Retention: the maintenance sweep deletes finished outbound events, emails and rejected events
 * older than their setting, in bounded batches, and never one still pending delivery or sending.
 * Rows are made old by dating them 1,000 days back; the settings keep 300 days, so rows other
 * test files write (all recent) are never in reach.
 */
describe('retention of outbound events, emails and rejected events', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  const DAY = 24 * 60 * 60_000;
  const settings = (change: Partial<RetentionSettings> = {}): RetentionSettings => ({
    ...DEFAULT_RETENTION_SETTINGS,
    outboundEventsMs: 300 * DAY,
    emailOutboxMs: 300 * DAY,
    rejectedEventsMs: 300 * DAY,
    ...change,
  });
  const sweep = (change?: Partial<RetentionSettings>) =>
    createRetentionActivities({ sql: h.sql, config: { retention: settings(change) } }).deleteExpiredRecords();

  async function event(endpointId: string, ageDays: number, status: 'pending' | 'delivered' | 'failed') {
    const account = await h.newAccount();
    const id = outboundEventId('balance.low', `retention:${account.id}`);
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, { id, type: 'balance.low', accountId: account.id, data: { threshold: 1 } }),
    );
    await h.sql`UPDATE outbound_events SET created_at = now() - ${ageDays} * interval '1 day' WHERE id = ${id}`;
    await h.sql`UPDATE webhook_deliveries SET status = ${status} WHERE event_id = ${id}`;
    const [delivery] = await h.sql<{ id: string }[]>`
      SELECT id FROM webhook_deliveries WHERE event_id = ${id} AND endpoint_id = ${endpointId}`;
    await h.sql`
      INSERT INTO webhook_delivery_attempts (delivery_id, attempt, succeeded, latency_ms)
      VALUES (${delivery!.id}, 1, ${status === 'delivered'}, 5)`;
    return id;
  }

  async function email(ageDays: number, status: 'pending' | 'sent' | 'failed') {
    const key = `retention:${randomUUID()}`;
    await h.sql`
      INSERT INTO email_outbox (key, to_address, subject, body_text, status, created_at)
      VALUES (${key}, 'someone@example.com', 'Receipt', 'Thanks', ${status},
              now() - ${ageDays} * interval '1 day')`;
    return key;
  }

  async function rejected(ageDays: number) {
    const eventId = `evt_retention_${randomUUID().replace(/-/g, '')}`;
    await h.sql`
      INSERT INTO rejected_events (event_id, event_type, reason_code, reason, payload_excerpt,
                                   first_received_at, last_received_at)
      VALUES (${eventId}, 'charge.refunded', 'invalid_payload', 'bad shape', '{}',
              now() - ${ageDays} * interval '1 day', now() - ${ageDays} * interval '1 day')`;
    return eventId;
  }

  const outboundLeft = async (ids: string[]) =>
    (
      await h.sql<{ id: string }[]>`SELECT id FROM outbound_events WHERE id = ANY(${ids}::text[]) ORDER BY id`
    ).map((row) => row.id);

  it('when finished records are older than their retention, then the sweep deletes them, and nothing pending or recent', async () => {
    const created = await h.api('POST', '/v1/webhook-endpoints', {
      url: 'http://127.0.0.1:9/retention',
      eventTypes: ['balance.low'],
    });
    expect(created.status).toBe(201);
    const endpointId = created.body.id as string;
    const oldDelivered = await event(endpointId, 1000, 'delivered');
    const oldFailed = await event(endpointId, 1000, 'failed');
    const oldPending = await event(endpointId, 1000, 'pending');
    const recent = await event(endpointId, 10, 'delivered');
    const emails = {
      oldSent: await email(1000, 'sent'),
      oldFailed: await email(1000, 'failed'),
      oldPending: await email(1000, 'pending'),
      recentSent: await email(10, 'sent'),
    };
    const oldRejected = await rejected(1000);
    const recentRejected = await rejected(10);

    const result = await sweep();
    expect(result.outboundEvents).toBeGreaterThanOrEqual(2);
    expect(result.emails).toBeGreaterThanOrEqual(2);
    expect(result.rejectedEvents).toBeGreaterThanOrEqual(1);

    expect(await outboundLeft([oldDelivered, oldFailed, oldPending, recent])).toEqual(
      [oldPending, recent].sort(),
    );
    // The deleted events' deliveries and attempts went with them; the pending one is untouched.
    const deliveries = await h.sql<{ event_id: string; status: string; attempts: number }[]>`
      SELECT d.event_id, d.status, (SELECT count(*)::int FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id) AS attempts
      FROM webhook_deliveries d WHERE d.endpoint_id = ${endpointId} ORDER BY d.event_id`;
    expect(deliveries).toEqual(
      [
        { event_id: oldPending, status: 'pending', attempts: 1 },
        { event_id: recent, status: 'delivered', attempts: 1 },
      ].sort((a, b) => (a.event_id < b.event_id ? -1 : 1)),
    );
    const keys = Object.values(emails);
    const emailsLeft = await h.sql<{ key: string }[]>`
      SELECT key FROM email_outbox WHERE key = ANY(${keys}::text[]) ORDER BY key`;
    expect(emailsLeft.map((row) => row.key)).toEqual([emails.oldPending, emails.recentSent].sort());
    const rejectedLeft = await h.sql<{ event_id: string }[]>`
      SELECT event_id FROM rejected_events WHERE event_id = ANY(${[oldRejected, recentRejected]}::text[])`;
    expect(rejectedLeft.map((row) => row.event_id)).toEqual([recentRejected]);

    // A second run finds nothing more of these (it is idempotent).
    await sweep();
    expect(await outboundLeft([oldPending, recent])).toEqual([oldPending, recent].sort());
  });

  it('when more rows are due than a run may delete, then each run deletes a bounded number and the next goes on', async () => {
    const due = [
      await rejected(1000),
      await rejected(1000),
      await rejected(1000),
      await rejected(1000),
      await rejected(1000),
    ];
    const left = async () =>
      (
        await h.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM rejected_events WHERE event_id = ANY(${due}::text[])`
      )[0]!.n;
    const first = await sweep({ batchSize: 2, maxBatchesPerRun: 2 });
    expect(first.rejectedEvents).toBe(4);
    expect(await left()).toBe(1);
    const second = await sweep({ batchSize: 2, maxBatchesPerRun: 2 });
    expect(second.rejectedEvents).toBe(1);
    expect(await left()).toBe(0);
  });

  it('when usage events are older than RETENTION_USAGE_PROPERTIES, then their properties are cleared and the events kept', async () => {
    // Received two days ago against a retention of one: events other files write now stay out of reach.
    const account = await h.newAccount();
    const usageEvent = async (id: string, receivedDaysAgo: number) => {
      await h.sql`
        INSERT INTO usage_events (account_id, event_id, feature, quantity, occurred_at, received_at,
                                  properties, fingerprint, credits)
        VALUES (${account.id}, ${id}, 'llm-tokens', 10, now(), now() - ${receivedDaysAgo} * interval '1 day',
                ${h.sql.json({ model: 'large' })}, '\\x00', 0)`;
    };
    await usageEvent('old', 2);
    await usageEvent('recent', 0);
    const result = await sweep({ usagePropertiesMs: DAY });
    expect(result.usageProperties).toBeGreaterThanOrEqual(1);
    const rows = await h.sql<{ event_id: string; properties: unknown }[]>`
      SELECT event_id, properties FROM usage_events WHERE account_id = ${account.id} ORDER BY event_id`;
    expect(rows).toEqual([
      { event_id: 'old', properties: null },
      { event_id: 'recent', properties: { model: 'large' } },
    ]);
  });
});
