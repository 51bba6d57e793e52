import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeDevStack } from '../../cli/dev-stack';
import { checkoutSession, stripeEvent } from '../../stripe/fixtures/index';
import { statusQuery } from '../../workflows/purchases/contract';
import { startHarness, type Harness } from '../support/harness';
import { TEST_CODEC_TOKEN } from '../support/payload-keys';
import { waitUntil } from '../support/wait';

/**
 * The operator commands as a person runs them (`npm run …`), with no service variable in their
 * environment: they find the servers in the dev stack's settings file, here one written for the
 * test servers, as `npm run dev` writes its own.
 */

const ROOT = path.resolve(__dirname, '..', '..');
// What the commands would otherwise take from the environment instead of the dev stack.
const SERVICE_VARIABLES = [
  'DATABASE_URL',
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_CODEC_ENDPOINT',
  'TEMPORAL_CODEC_AUTH',
  'STRIPE_SECRET_KEY',
];

/** A payload as the CLI's JSON output shows it: protobuf JSON, bytes in base64. */
interface StartedAttributes {
  input: { payloads: { metadata: { encoding: string }; data: string }[] };
}
const decoded = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function npmRun(script: string, args: string[], stackFile: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, CREDITS_DEV_STACK_FILE: stackFile };
  for (const name of SERVICE_VARIABLES) delete env[name];
  const child = spawn('npm', ['run', '--silent', script, '--', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('operator commands against the running dev stack', () => {
  let h: Harness;
  let dir: string;
  let stackFile: string;
  const marker = `operator-cli-${randomUUID()}`;
  const workflowId = `operator-cli-${randomUUID()}`;

  beforeAll(async () => {
    h = await startHarness();
    dir = mkdtempSync(path.join(os.tmpdir(), 'operator-commands-'));
    stackFile = path.join(dir, 'dev-stack.json');
    writeDevStack(stackFile, {
      // This process stands for the dev stack's: it runs as long as the test does.
      pid: process.pid,
      startedAt: new Date().toISOString(),
      databaseUrl: h.config.databaseUrl,
      temporal: {
        address: h.config.temporal.address,
        namespace: h.config.temporal.namespace,
        taskQueue: h.config.temporal.taskQueue,
        uiUrl: null,
      },
      api: { url: h.baseUrl, key: '' },
      codec: { endpoint: `${h.baseUrl}/codec`, token: TEST_CODEC_TOKEN },
      smtp: { url: 'smtp://127.0.0.1:1', inboxUrl: null },
    });
    // Encrypted by the service's codec; no worker polls its task queue, so it stays running.
    await h.temporal.workflow.start('operatorCliProbe', {
      workflowId,
      taskQueue: `operator-cli-${randomUUID()}`,
      args: [{ marker }],
    });
    await h.newAccount();
  });

  afterAll(async () => {
    await h?.temporal.workflow
      .getHandle(workflowId)
      .terminate('test over')
      .catch(() => {});
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when `npm run temporal -- workflow describe` runs with no TEMPORAL_ADDRESS, then it describes the workflow on the dev stack’s Temporal', async () => {
    const run = await npmRun('temporal', ['workflow', 'describe', '--workflow-id', workflowId], stackFile);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(new RegExp(`WorkflowId\\s+${workflowId}\n`));
    expect(run.stdout).toMatch(/Type\s+operatorCliProbe\n/);
    expect(run.stdout).toMatch(new RegExp(`Namespace\\s+${h.config.temporal.namespace}\n`));
  });

  it('when `npm run temporal -- workflow show` runs, then the history reads decrypted through the dev stack’s codec server', async () => {
    const run = await npmRun(
      'temporal',
      ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json'],
      stackFile,
    );
    expect(run.code).toBe(0);
    const shown = JSON.parse(run.stdout) as {
      events: { workflowExecutionStartedEventAttributes?: StartedAttributes }[];
    };
    const [input] = shown.events[0]?.workflowExecutionStartedEventAttributes?.input.payloads ?? [];
    expect(decoded(input?.metadata.encoding)).toBe('json/plain');
    expect(JSON.parse(decoded(input?.data))).toEqual({ marker });
    // As Temporal stores it, the input is ciphertext: the codec server decrypted it.
    const { history } = await h.temporal.workflowService.getWorkflowExecutionHistory({
      namespace: h.config.temporal.namespace,
      execution: { workflowId },
    });
    const stored = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    expect(stored).toHaveLength(1);
    expect(Buffer.from(stored[0]?.metadata?.encoding ?? []).toString()).not.toBe('json/plain');
    expect(Buffer.from(stored[0]?.data ?? []).toString('latin1')).not.toContain(marker);
  });

  it('when the user passes a flag of their own, then it wins over the dev stack’s setting', async () => {
    const run = await npmRun(
      'temporal',
      ['workflow', 'describe', '--workflow-id', workflowId, '--namespace', 'not-the-dev-stacks'],
      stackFile,
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/not-the-dev-stacks.*not found|not found.*not-the-dev-stacks/i);
  });

  it('when `npm run temporal -- workflow query --type status` asks a held purchase, then it answers the decoded status', async () => {
    // Paid 850 for a pack that costs 900: held for review, its workflow waiting and queryable.
    const account = await h.newAccount();
    const event = stripeEvent(
      'checkout.session.completed',
      checkoutSession({ packId: 'starter', amountTotal: 850, accountId: account.id }),
    );
    expect((await h.deliver(event)).status).toBe(200);
    const handle = h.temporal.workflow.getHandle(event.id);
    await waitUntil(async () => (await handle.query(statusQuery)).stage === 'held_for_review', {
      what: 'held_for_review',
    });
    try {
      const run = await npmRun(
        'temporal',
        ['workflow', 'query', '--workflow-id', event.id, '--type', 'status', '--output', 'json'],
        stackFile,
      );
      expect(run).toMatchObject({ code: 0, stderr: '' });
      const answer = JSON.parse(run.stdout) as { queryResult: unknown[] };
      expect(answer.queryResult).toEqual([
        expect.objectContaining({
          stage: 'held_for_review',
          accountId: account.id,
          reasonCode: 'amount_mismatch',
        }),
      ]);
    } finally {
      await handle.terminate('test over');
    }
  });

  it('when the CLI encodes a query without arguments, then the codec server takes the empty list proto3 JSON leaves out', async () => {
    // `workflow query` sends {} to /codec/encode: protobuf JSON omits an empty repeated field.
    const answer = await fetch(`${h.baseUrl}/codec/encode`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_CODEC_TOKEN}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect({ status: answer.status, body: await answer.json() }).toEqual({
      status: 200,
      body: { payloads: [] },
    });
  });

  it('when `npm run verify:ledger` runs with no DATABASE_URL, then it checks the dev stack’s database', async () => {
    const run = await npmRun('verify:ledger', ['--json'], stackFile);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { ok: boolean; accounts: number };
    expect(result.ok).toBe(true);
    expect(result.accounts).toBeGreaterThan(0);
  });

  it('when `npm run reconcile` runs with no DATABASE_URL, then the dev stack supplies the database and Temporal and only Stripe’s key is missing', async () => {
    const since = new Date(Date.now() - 60 * 60_000).toISOString();
    const run = await npmRun('reconcile', ['--since', since, '--dry-run'], stackFile);
    expect(run).toMatchObject({ code: 2, stdout: '' });
    expect(run.stderr).toBe('STRIPE_SECRET_KEY is required: the events are read from Stripe\n');
  });

  it('when there is neither DATABASE_URL nor a running dev stack, then verify:ledger and reconcile say so and exit 2', async () => {
    const none = path.join(dir, 'no-stack.json');
    const verify = await npmRun('verify:ledger', [], none);
    expect(verify.code).toBe(2);
    expect(verify.stderr).toMatch(
      /^no DATABASE_URL and no running dev stack: start `npm run dev` or set DATABASE_URL\n/,
    );
    const since = new Date(Date.now() - 60 * 60_000).toISOString();
    const reconcile = await npmRun('reconcile', ['--since', since, '--dry-run'], none);
    expect(reconcile).toMatchObject({
      code: 2,
      stderr: 'no DATABASE_URL and no running dev stack: start `npm run dev` or set DATABASE_URL\n',
    });
  });
});
