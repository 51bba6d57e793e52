import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { stripeInvoicePaymentLookup } from '../../stripe/invoice-payments';
import { createMailer } from '../../email/mailer';
import { stripeTopupPayments } from '../../activities/topups/topup';
import { createApp } from '../../api/app';
import { createMetrics } from '../../api/metrics';
import { createStripeClient } from '../../stripe/client';
import { loadApiConfig, type ApiConfig } from '../../config/env';
import type { Logger } from '../../config/logger';
import { temporalDataConverter } from '../../config/payload-codec';
import { createAccount } from '../../credits/accounts';
import { createSql, type Sql } from '../../db/client';
import { deliverEvent, type StripeEvent } from '../../stripe/fixtures/index';
import { createWorker } from '../../worker/create-worker';
import { temporalWorkflowDirectory } from '../../worker/maintenance-schedule';
import { TEST_CODEC_TOKEN, TEST_PAYLOAD_KEYS, TEST_UI_ORIGIN } from './payload-keys';
import { installQuietRuntime } from './quiet-runtime';
import { SmtpCatcher } from './smtp-catcher';
import { testLogger } from './test-log';

export const WEBHOOK_SECRET = 'whsec_test_primary_0123456789abcdef';
export const ROTATED_WEBHOOK_SECRET = 'whsec_test_rotated_0123456789abcdef';
/** A bare key (the form before roles): role write, named key-1. */
export const API_KEY = 'test_api_key_0123456789abcdef';
/** The key `api()` sends unless told otherwise: role admin, so every route is open to tests. */
export const ADMIN_API_KEY = 'test_admin_key_0123456789abcdef';
export const ADMIN_KEY_NAME = 'ops';

/** Sweep ages in tests: only rows a test backdates on purpose are old enough to be swept. */
export const TEST_OUTBOX_AGES = { sweepAfterMs: 60 * 60_000, giveUpAfterMs: 24 * 60 * 60_000 };

function services() {
  const databaseUrl = process.env.TEST_DATABASE_URL;
  const temporalAddress = process.env.TEST_TEMPORAL_ADDRESS;
  const workflowBundle = process.env.TEST_WORKFLOW_BUNDLE;
  if (!databaseUrl || !temporalAddress || !workflowBundle) {
    throw new Error('the test services are not running: run the tests with `npm test`');
  }
  return { databaseUrl, temporalAddress, workflowBundle };
}

/** The API configuration of one test file: its own task queue, short deadlines. */
export function testApiConfig(overrides: Record<string, string> = {}): ApiConfig {
  const { databaseUrl, temporalAddress } = services();
  return loadApiConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: `test-${randomUUID()}`,
    STRIPE_WEBHOOK_SECRET: `${WEBHOOK_SECRET},${ROTATED_WEBHOOK_SECRET}`,
    BILLING_API_KEYS: `${API_KEY},${ADMIN_KEY_NAME}:admin:${ADMIN_API_KEY}`,
    PORT: '0',
    PURCHASE_REVIEW_TIMEOUT: '1 hour',
    RECEIPT_DEADLINE: '2 minutes',
    WEBHOOK_TEMPORAL_TIMEOUT_MS: '3000',
    // Room for a decision to be taken in on a loaded machine: the review tests assert it applied.
    REVIEW_APPLY_WAIT_MS: '30000',
    TEMPORAL_PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    TEMPORAL_CODEC_TOKEN: TEST_CODEC_TOKEN,
    TEMPORAL_UI_ORIGIN: TEST_UI_ORIGIN,
    ...overrides,
  });
}

/**
 * A second API beside the harness's, on its own ephemeral port, with some of its dependencies
 * swapped (a database that is down, a namespace that is not set up…): its URL and how to stop it.
 */
export async function startAppWith(
  h: Harness,
  swap: { sql?: Sql; temporal?: Client; logger?: Logger },
): Promise<{ url: string; close: () => Promise<void> }> {
  const app = createApp({
    config: h.config,
    sql: swap.sql ?? h.sql,
    temporal: swap.temporal ?? h.temporal,
    stripe: null,
    logger: swap.logger ?? testLogger('api'),
    metrics: createMetrics(),
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Harness {
  config: ApiConfig;
  baseUrl: string;
  sql: Sql;
  temporal: Client;
  smtp: SmtpCatcher;
  /** Starts the in-process worker (started by default). */
  startWorker(): Promise<void>;
  /** Stops the in-process worker and waits for it to finish. */
  stopWorker(): Promise<void>;
  deliver(event: StripeEvent, secret?: string): Promise<{ status: number; body: any }>;
  api(
    method: string,
    path: string,
    body?: unknown,
    apiKey?: string | null,
  ): Promise<{ status: number; body: any }>;
  newAccount(options?: { email?: string }): Promise<{ id: string; email: string }>;
  close(): Promise<void>;
}

/**
 * Everything one test file needs, against the real servers of the global setup: the API on an
 * ephemeral port, a worker on the file's own task queue, and its own SMTP server.
 */
export async function startHarness(
  options: {
    worker?: boolean;
    configOverrides?: Record<string, string>;
    /** The worker's CREDIT_EXPIRY_NOTICE, in ms (null: off); the default when absent. */
    creditExpiryNoticeMs?: number | null;
  } = {},
): Promise<Harness> {
  const { temporalAddress, workflowBundle } = services();
  installQuietRuntime();
  const config = testApiConfig(options.configOverrides);
  // The API's log lines go to this test file's log (shown when a test fails).
  const logger = testLogger('api');
  const sql = createSql(config.databaseUrl, { max: 20 });
  const smtp = await SmtpCatcher.start();
  const connection = await Connection.connect({ address: temporalAddress });
  // The service's codec, with the tests' key ring (or the one a test configures).
  const dataConverter = temporalDataConverter(config.temporalPayloads);
  const temporal = new Client({ connection, namespace: config.temporal.namespace, dataConverter });
  const stripe = createStripeClient(config.stripe);
  const app = createApp({ config, sql, temporal, stripe, logger, metrics: createMetrics() });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const mailer = createMailer({ smtpUrl: smtp.url, from: 'Credits <billing@credits.test>' });
  let worker: { instance: Worker; running: Promise<void>; connection: NativeConnection } | null = null;

  const harness: Harness = {
    config,
    baseUrl,
    sql,
    temporal,
    smtp,
    async startWorker() {
      if (worker) return;
      const workerConnection = await NativeConnection.connect({ address: temporalAddress });
      const instance = await createWorker({
        connection: workerConnection,
        namespace: config.temporal.namespace,
        taskQueue: config.temporal.taskQueue,
        workflowBundle: { codePath: workflowBundle },
        dataConverter,
        dependencies: {
          sql,
          mailer,
          invoicePayments: stripe && stripeInvoicePaymentLookup(stripe),
          topups: stripe && { payments: stripeTopupPayments(stripe), returnUrl: 'http://127.0.0.1/billing' },
          workflows: temporalWorkflowDirectory(temporal),
          config: {
            stripe: config.stripe,
            emailDomain: 'credits.test',
            outbox: TEST_OUTBOX_AGES,
            creditExpiryNoticeMs: options.creditExpiryNoticeMs,
            secretKeys: config.temporalPayloads.keyRing,
          },
        },
      });
      worker = { instance, running: instance.run(), connection: workerConnection };
    },
    async stopWorker() {
      if (!worker) return;
      const { instance, running, connection: workerConnection } = worker;
      worker = null;
      instance.shutdown();
      await running;
      await workerConnection.close();
    },
    deliver(event, secret = WEBHOOK_SECRET) {
      return deliverEvent(`${baseUrl}/webhooks/stripe`, event, secret);
    },
    async api(method, path, body, apiKey = ADMIN_API_KEY) {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          ...(apiKey === null ? {} : { authorization: `Bearer ${apiKey}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    async newAccount({ email } = {}) {
      const id = `acct_${randomUUID()}`;
      const address = email ?? `${id}@customers.test`;
      await createAccount(sql, { id, email: address });
      return { id, email: address };
    },
    async close() {
      await harness.stopWorker();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await connection.close();
      mailer.close();
      await smtp.down();
      await sql.end({ timeout: 5 });
    },
  };
  if (options.worker !== false) await harness.startWorker();
  return harness;
}
