import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { INSTALL_TEMPORAL_TEST_SERVER, installedTemporalTestServer } from '../../scripts/temporal-cli';
import { activityInterceptors } from '../../worker/billing-error-interceptor';
import { SEARCH_ATTRIBUTES } from '../../workflows/shared/search-attributes';
import { testDataConverter } from './payload-keys';
import { installQuietRuntime } from './quiet-runtime';
import type { StubActivities } from './stub-activities';

/** One test file's Temporal: a time-skipping test server and a worker that runs stub activities. */
export interface WorkflowTier {
  env: TestWorkflowEnvironment;
  taskQueue: string;
  /** A payload as a workflow's history holds it (encrypted by the service's codec), read back. */
  readPayload(payload: Payload): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Starts Temporal's time-skipping test server (no dev server, no database) with the service's
 * search attributes, and a worker on the workflow bundle the fast tier's setup built once. The
 * client and the worker have the service's data converter (payload codec, failure converter), and
 * the worker its activity interceptor in front of the stubs: a stub throws `errors.x(…)` and the
 * workflow sees the failure type the real activity would give it.
 */
export async function startWorkflowTier(stubs: StubActivities<unknown>): Promise<WorkflowTier> {
  const server = installedTemporalTestServer();
  if (!server) {
    throw new Error(
      `The fast tier runs workflows on Temporal's time-skipping test server, which is not installed. Install it: ${INSTALL_TEMPORAL_TEST_SERVER}.`,
    );
  }
  const bundle = process.env.FAST_WORKFLOW_BUNDLE;
  if (!bundle) throw new Error('no workflow bundle: run the fast tier with `npm run test:fast`');
  installQuietRuntime();
  const dataConverter = testDataConverter();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: server } },
    client: { dataConverter },
  });
  try {
    const keyword = encodeSearchAttributeIndexedValueType('KEYWORD');
    if (keyword === undefined) throw new Error('no Keyword search attribute type');
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map(({ name }) => [name, keyword])),
    });
    const taskQueue = `fast-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { codePath: bundle },
      dataConverter,
      activities: stubs.activities,
      interceptors: { activity: activityInterceptors },
    });
    const running = worker.run();
    return {
      env,
      taskQueue,
      async readPayload(payload) {
        const [decoded] = (await dataConverter.payloadCodecs?.[0]?.decode([payload])) ?? [payload];
        return defaultPayloadConverter.fromPayload(decoded as Payload);
      },
      async close() {
        worker.shutdown();
        await running;
        await env.teardown();
      },
    };
  } catch (error) {
    await env.teardown();
    throw error;
  }
}
