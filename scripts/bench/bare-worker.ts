import { NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { DEVELOPMENT_PAYLOAD_KEYS } from '../../config/env';
import { PayloadKeyRing, temporalDataConverter } from '../../config/payload-codec';
import { WORKER_TUNING } from '../../worker/create-worker';
import { bareActivities } from './bare-activities';

/**
 * The bare-Temporal baseline's worker: a process of its own, like the service's worker, with the
 * same tuning and payload codec (the development key), polling its own task queue on the same
 * server.
 *
 *   BENCH_TEMPORAL_ADDRESS=127.0.0.1:7233 BENCH_TASK_QUEUE=bench-bare node --import tsx scripts/bench/bare-worker.ts
 */
async function main(): Promise<void> {
  const address = process.env.BENCH_TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const taskQueue = process.env.BENCH_TASK_QUEUE ?? 'bench-bare';
  Runtime.install({
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } },
  });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace: process.env.BENCH_TEMPORAL_NAMESPACE ?? 'default',
    taskQueue,
    workflowsPath: require.resolve('./bare-workflow'),
    activities: bareActivities,
    dataConverter: temporalDataConverter({
      keyRing: PayloadKeyRing.from(DEVELOPMENT_PAYLOAD_KEYS),
      encrypt: true,
    }),
    ...WORKER_TUNING,
    shutdownGraceTime: '10 seconds',
  });
  process.stdout.write('bare worker started\n');
  await worker.run();
  await connection.close();
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bare worker failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
