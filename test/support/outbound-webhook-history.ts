import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { webhookDispatcherWorkflowId } from '../../workflows/outbound-webhooks/contract';
import { kickWebhookDispatcher } from '../../temporal/outbound-webhook-kicker';
import type { Harness } from './harness';
import { waitUntil } from './wait';

/**
 * A dispatcher's whole life, for a recorded history: an endpoint on 127.0.0.1 is registered, one
 * event is delivered (refused once, then accepted), the endpoint is deleted and the dispatcher
 * ends. Answers the dispatcher's workflow ID once it has ended.
 */
export async function runWebhookDispatcherToTheEnd(h: Harness): Promise<string> {
  let received = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(received === 1 ? 503 : 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    const created = await h.api('POST', '/v1/webhook-endpoints', { url });
    const endpointId = created.body.id as string;
    const account = await h.newAccount();
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: outboundEventId('balance.low', `recorded:${account.id}`),
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 100, available: 40 },
      }),
    );
    await kickWebhookDispatcher(h.temporal, h.config.temporal.taskQueue, endpointId);
    // The refusal is retried after WEBHOOK_RETRY_INITIAL (30 s by default).
    await waitUntil(() => received >= 2, { timeoutMs: 120_000, what: 'the retried delivery' });
    await h.api('DELETE', `/v1/webhook-endpoints/${endpointId}`);
    const workflowId = webhookDispatcherWorkflowId(endpointId);
    await h.temporal.workflow.getHandle(workflowId).result();
    return workflowId;
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
