import type { Client } from '@temporalio/client';
import type { Sql } from '../db/client';
import { OUTBOUND_NOTIFY_CHANNEL } from '../db/outbound-webhooks/events';
import {
  WEBHOOK_DISPATCHER_WORKFLOW_TYPE,
  webhookDispatcherWorkflowId,
  webhookKickSignal,
  type WebhookDispatcherInput,
} from '../workflows/outbound-webhooks/contract';

/** Starts the endpoint's dispatcher if it is not running, and tells it to look now. */
export async function kickWebhookDispatcher(
  client: Client,
  taskQueue: string,
  endpointId: string,
): Promise<void> {
  const input: WebhookDispatcherInput = { endpointId };
  await client.workflow.signalWithStart(WEBHOOK_DISPATCHER_WORKFLOW_TYPE, {
    workflowId: webhookDispatcherWorkflowId(endpointId),
    taskQueue,
    args: [input],
    signal: webhookKickSignal,
    signalArgs: [],
  });
}

interface Logger {
  warn(fields: object, message: string): void;
}

/**
 * Kicks dispatchers after commit: every transaction that queues a delivery announces its endpoints
 * with NOTIFY, which PostgreSQL delivers only once (and only if) it commits, whichever process
 * committed it (the API's debits, any activity). Announcements are gathered for a moment and each
 * endpoint kicked once. At start, every endpoint with pending deliveries is kicked (a restart may
 * have missed some). A lost announcement delays a delivery until the dispatcher's next look, no more.
 */
export async function startOutboundWebhookKicker(deps: {
  sql: Sql;
  client: Client;
  taskQueue: string;
  logger: Logger;
  gatherMs?: number;
  /** Which endpoints this process kicks (default: all); tests sharing a database keep to their own. */
  serves?: (endpointId: string) => boolean;
}): Promise<{ close: () => Promise<void> }> {
  const { sql, client, taskQueue, logger } = deps;
  const waiting = new Set<string>();
  let everyEndpoint = false;
  let timer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> = Promise.resolve();

  async function flush(): Promise<void> {
    timer = null;
    let ids = [...waiting];
    waiting.clear();
    if (everyEndpoint) {
      everyEndpoint = false;
      const rows = await sql<{ id: string }[]>`SELECT id FROM webhook_endpoints WHERE enabled`;
      ids = rows.map((row) => row.id);
    }
    if (deps.serves) ids = ids.filter(deps.serves);
    await Promise.all(
      ids.map((id) =>
        kickWebhookDispatcher(client, taskQueue, id).catch((error: unknown) => {
          logger.warn(
            { err: error, endpointId: id },
            'webhook dispatcher not kicked; its own timer will look',
          );
        }),
      ),
    );
  }

  const schedule = () => {
    timer ??= setTimeout(() => {
      flushing = flushing.then(flush).catch((error: unknown) => {
        logger.warn({ err: error }, 'webhook dispatchers not kicked; their own timers will look');
      });
    }, deps.gatherMs ?? 50);
  };

  let subscription: { unlisten: () => Promise<void> } | null = null;
  let retry: NodeJS.Timeout | null = null;
  let closed = false;

  // The database may be down when the worker starts: listen as soon as it is back.
  async function listen(): Promise<void> {
    retry = null;
    try {
      subscription = await sql.listen(OUTBOUND_NOTIFY_CHANNEL, (payload) => {
        if (payload === '') everyEndpoint = true;
        for (const id of payload.split(',')) if (id !== '') waiting.add(id);
        schedule();
      });
      if (closed) {
        await subscription.unlisten();
        return;
      }
      const pending = await sql<{ endpoint_id: string }[]>`
        SELECT DISTINCT d.endpoint_id FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
        WHERE d.status = 'pending'`;
      for (const row of pending) waiting.add(row.endpoint_id);
      if (waiting.size > 0) schedule();
    } catch (error) {
      logger.warn({ err: error }, 'not listening for outbound webhook events yet; trying again in 5 s');
      if (!closed && subscription === null) retry = setTimeout(() => void listen(), 5_000);
    }
  }
  await listen();

  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      if (timer) clearTimeout(timer);
      await subscription?.unlisten();
      await flushing;
    },
  };
}
