import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { CONFIG_VARIABLES } from '../../config/env';
import { spawnUntilReady, Supervised, type ExitRecord, type LogSink } from './processes';

/**
 * The worker and the API, each the real entry point (`worker/main.ts`, `api/main.ts`) in a
 * process of its own, configured only through the environment, as in production.
 */

const ROOT = path.resolve(__dirname, '..', '..');
// Bundling the workflows at start-up takes a while on a busy 2-core machine.
const START_TIMEOUT_MS = 180_000;

export interface AppSettings {
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  smtpUrl: string;
  apiPort: number;
  webhookSecret: string;
  apiKey: string;
}

/** This environment without any of the service's own variables (a .env or shell of the user's). */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete env[name];
  return env;
}

export function appEnv(settings: AppSettings): NodeJS.ProcessEnv {
  return {
    ...baseEnv(),
    NODE_ENV: 'development',
    DATABASE_URL: settings.databaseUrl,
    TEMPORAL_ADDRESS: settings.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: settings.taskQueue,
    SMTP_URL: settings.smtpUrl,
    EMAIL_FROM: 'Credits <billing@chaos.example>',
    HOST: '127.0.0.1',
    PORT: String(settings.apiPort),
    STRIPE_WEBHOOK_SECRET: settings.webhookSecret,
    // An admin key: the run grants the usage accounts their credits through the API.
    BILLING_API_KEYS: `chaos:admin:${settings.apiKey}`,
    // The worker's metrics on a port the OS picks: a dev stack on this machine has 9464.
    WORKER_METRICS_PORT: '0',
  };
}

const tsxEntry = (file: string) => ['--import', 'tsx', file];

export function workerProcess(
  settings: AppSettings,
  log: LogSink,
  onUnexpectedExit: (record: ExitRecord) => void,
): Supervised {
  // Info level: "worker started" is the sign that it polls the task queue.
  const env = { ...appEnv(settings), LOG_LEVEL: 'info' };
  const launch = (onSpawn: (child: ChildProcess) => void) =>
    spawnUntilReady({
      onSpawn,
      name: 'worker',
      command: process.execPath,
      args: tsxEntry('worker/main.ts'),
      spawnOptions: { cwd: ROOT, env },
      log,
      readyLine: /"msg":"worker started"/,
      timeoutMs: START_TIMEOUT_MS,
    });
  return new Supervised('worker', launch, log, onUnexpectedExit);
}

export function apiProcess(
  settings: AppSettings,
  log: LogSink,
  onUnexpectedExit: (record: ExitRecord) => void,
): Supervised {
  const env = { ...appEnv(settings), LOG_LEVEL: 'warn' };
  const launch = (onSpawn: (child: ChildProcess) => void) =>
    spawnUntilReady({
      onSpawn,
      name: 'api',
      command: process.execPath,
      args: tsxEntry('api/main.ts'),
      spawnOptions: { cwd: ROOT, env },
      log,
      probe: async () =>
        (await fetch(`http://127.0.0.1:${settings.apiPort}/healthz`, { signal: AbortSignal.timeout(1000) }))
          .ok,
      timeoutMs: START_TIMEOUT_MS,
    });
  return new Supervised('api', launch, log, onUnexpectedExit);
}
