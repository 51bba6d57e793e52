import { Client, Connection } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { countLowBalanceNotices, findUnstartedFollowUps } from '../../credits/index';
import { createSql, type Sql } from '../../db/client';
import { migrate } from '../../db/migrate';
import { temporalDataConverter } from '../../config/payload-codec';
import { testApiConfig } from '../support/harness';
import { startFollowUps } from '../../temporal/follow-ups';
import { startOnce } from '../../temporal/start-once';

/** The migrations that shipped before follow-ups had kinds: a database as that release left it. */
const BEFORE_KINDS = 12;
const MIGRATION = path.join(
  __dirname,
  '..',
  '..',
  'db',
  'migrations',
  '1765008000000_balance-follow-up-kinds.sql',
);

describe('migrating balance follow-ups from workflow types to kinds', () => {
  let admin: Sql;
  let sql: Sql;
  let connection: Connection;
  let temporal: Client;
  const database = `migration_${randomUUID().replaceAll('-', '')}`;
  // The runs it starts share the Temporal server with every test file: IDs of this file's own.
  const account = `acct:old-${randomUUID()}`;
  const topupId = `topup_${String(Date.now())}${String(Math.floor(Math.random() * 1e5)).padStart(5, '0')}`;

  // The service's codec: the input a run was started with is read back through it.
  const dataConverter = temporalDataConverter(testApiConfig().temporalPayloads);

  beforeAll(async () => {
    const base = process.env.TEST_DATABASE_URL ?? '';
    admin = createSql(base, { max: 1 });
    await admin.unsafe(`CREATE DATABASE ${database}`);
    const target = new URL(base);
    target.pathname = `/${database}`;
    expect(await migrate(target.toString(), () => {}, { count: BEFORE_KINDS })).toHaveLength(BEFORE_KINDS);
    sql = createSql(target.toString(), { max: 2 });
    connection = await Connection.connect({ address: process.env.TEST_TEMPORAL_ADDRESS ?? '' });
    temporal = new Client({
      connection,
      dataConverter: temporalDataConverter(testApiConfig().temporalPayloads),
    });

    // What the previous release wrote: a notice left unstarted (a crash), one started, a top-up
    // left unstarted, each with the workflow type and input it recorded.
    const notice = (n: number) => `low-balance:${account}:${n}`;
    await sql`INSERT INTO accounts (id, email) VALUES (${account}, 'old@customers.test')`;
    await sql`INSERT INTO credit_balances (account_id, balance) VALUES (${account}, 40)`;
    await sql`
      INSERT INTO topup_settings (account_id, enabled, threshold, credits, amount_cents, currency,
                                  monthly_cap_cents, armed)
      VALUES (${account}, true, 50, 100, 900, 'usd', 10000, false)`;
    for (const [n, available] of [
      [1, 70],
      [2, 40],
    ] as const) {
      await sql`
        INSERT INTO outbound_events (id, type, account_id, api_version, data)
        VALUES (${`evt_old_low_${n}`}, 'balance.low', ${account}, '2026-12-01',
                ${sql.json({ available, threshold: 80, notice: n })})`;
    }
    await sql`
      INSERT INTO balance_follow_ups (workflow_id, account_id, workflow_type, input, started_at) VALUES
        (${notice(1)}, ${account}, 'lowBalanceNoticeWorkflow',
         ${sql.json({ accountId: account, emailKey: notice(1) })}, now()),
        (${notice(2)}, ${account}, 'lowBalanceNoticeWorkflow',
         ${sql.json({ accountId: account, emailKey: notice(2) })}, NULL),
        (${`topup:${topupId}`}, ${account}, 'topupWorkflow', ${sql.json({ topupId, accountId: account })}, NULL)`;
    await migrate(target.toString());
  });
  afterAll(async () => {
    await sql?.end();
    await connection?.close();
    await admin?.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin?.end();
  });

  it('when a database with follow-ups of the previous release is migrated, then each has the kind and facts it recorded', async () => {
    const rows = await sql<{ key: string; kind: string; facts: unknown; started: boolean }[]>`
      SELECT key, kind, facts, started_at IS NOT NULL AS started FROM balance_follow_ups ORDER BY key`;
    expect(rows).toEqual([
      {
        key: `low-balance:${account}:1`,
        kind: 'low_balance_notice',
        facts: { notice: 1, available: 70, threshold: 80, autoTopup: true },
        started: true,
      },
      {
        key: `low-balance:${account}:2`,
        kind: 'low_balance_notice',
        facts: { notice: 2, available: 40, threshold: 80, autoTopup: true },
        started: false,
      },
      { key: `topup:${topupId}`, kind: 'topup', facts: { topupId }, started: false },
    ]);
    // The next notice of the account is the third, whatever threshold is saved again.
    expect(await countLowBalanceNotices(sql, account)).toBe(2);
  });

  it('when the migration runs again, then it changes nothing', async () => {
    const before = await sql`SELECT * FROM balance_follow_ups ORDER BY key`;
    const up = readFileSync(MIGRATION, 'utf8').split('-- Down Migration')[0] ?? '';
    await sql.unsafe(up);
    expect(await sql`SELECT * FROM balance_follow_ups ORDER BY key`).toEqual(before);
  });

  it('when the follow-ups left unstarted by the previous release are started, then each starts the workflow it recorded, under its ID, with its input', async () => {
    const taskQueue = `migration-${randomUUID()}`; // no worker: the runs wait, as recorded
    expect(await findUnstartedFollowUps(sql, { limit: 10 })).toHaveLength(2);
    const started = await startFollowUps(
      { sql, taskQueue, startOnce: (type, options) => startOnce(temporal.workflow, type, options) },
      { limit: 10 },
    );
    expect(started).toBe(2);
    const runs = [
      {
        workflowId: `low-balance:${account}:2`,
        type: 'lowBalanceNoticeWorkflow',
        input: { accountId: account, emailKey: `low-balance:${account}:2` },
      },
      {
        workflowId: `topup:${topupId}`,
        type: 'topupWorkflow',
        input: { topupId, accountId: account },
      },
    ];
    for (const run of runs) {
      const handle = temporal.workflow.getHandle(run.workflowId);
      const { type } = await handle.describe();
      const { events } = await handle.fetchHistory();
      const [sealed] = events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
      const [payload] = sealed
        ? ((await dataConverter.payloadCodecs?.[0]?.decode([sealed])) ?? [sealed])
        : [];
      const input = JSON.parse(Buffer.from(payload?.data ?? []).toString('utf8')) as Record<string, unknown>;
      await handle.terminate('migration test');
      expect(type).toBe(run.type);
      // As recorded; a notice's input carries its facts too (its email is queued already).
      expect(input).toMatchObject(run.input);
    }
    expect(await findUnstartedFollowUps(sql, { limit: 10 })).toEqual([]);
  });
});
