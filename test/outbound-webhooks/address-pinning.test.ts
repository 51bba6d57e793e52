import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createOutboundWebhookActivities,
  DEFAULT_OUTBOUND_WEBHOOK_SETTINGS,
} from '../../activities/outbound-webhooks/dispatcher';
import type { HostResolver } from '../../activities/outbound-webhooks/pinned-request';
import { outboundEventId, queueOutboundEvent } from '../../db/outbound-webhooks/events';
import { startHarness, type Harness } from '../support/harness';

/**
 * Where a delivery connects is decided once per attempt, at connect time: the endpoint's name is
 * resolved (here by a resolver the test controls, since no real DNS answers offline), every
 * address it resolves to is checked, and the connection goes to the address checked, so a second
 * resolution (DNS rebinding) cannot swap it for another. No dispatcher runs: each test makes the
 * attempts it asserts on.
 */

/** A resolver whose answers the test scripts, one per call (the last one repeats), counting calls. */
function scriptedResolver(...answers: string[][]): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = (hostname: string) => {
    calls.push(hostname);
    const answer = answers[Math.min(calls.length, answers.length) - 1] ?? [];
    return Promise.resolve(answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  return Object.assign(resolve, { calls });
}

describe('webhook deliveries connect to the address they checked', () => {
  let h: Harness;
  let server: Server;
  let port: number;
  const received: Array<{ host: string | undefined }> = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    server = createServer((req, res) => {
      received.push({ host: req.headers.host });
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await h?.close();
  });

  const activities = (resolveHost: HostResolver, production: boolean) =>
    createOutboundWebhookActivities({
      sql: h.sql,
      resolveHost,
      config: {
        outboundWebhooks: { ...DEFAULT_OUTBOUND_WEBHOOK_SETTINGS, attemptTimeoutMs: 2_000, production },
        secretKeys: h.config.temporalPayloads.keyRing,
      },
    });

  /** An endpoint stored with this URL (as a production API would have accepted it) and one delivery to it. */
  async function deliveryTo(url: string): Promise<{ endpointId: string; deliveryId: number }> {
    // The API of the tests runs outside production; a production URL is registered as it would be there.
    const created = await h.api('POST', '/v1/webhook-endpoints', {
      url: `http://127.0.0.1:${port}/hooks`,
      eventTypes: ['balance.low'],
    });
    expect(created.status).toBe(201);
    const endpointId = created.body.id as string;
    await h.sql`UPDATE webhook_endpoints SET url = ${url} WHERE id = ${endpointId}`;
    const account = await h.newAccount();
    const eventId = outboundEventId('balance.low', `pinning:${account.id}`);
    await h.sql.begin((tx) =>
      queueOutboundEvent(tx, {
        id: eventId,
        type: 'balance.low',
        accountId: account.id,
        data: { threshold: 1 },
      }),
    );
    const [row] = await h.sql<{ id: string }[]>`
      SELECT id FROM webhook_deliveries WHERE endpoint_id = ${endpointId} AND event_id = ${eventId}`;
    return { endpointId, deliveryId: Number(row!.id) };
  }

  const attemptError = async (deliveryId: number, attempt: number) => {
    const [row] = await h.sql<{ error: string | null }[]>`
      SELECT error FROM webhook_delivery_attempts WHERE delivery_id = ${deliveryId} AND attempt = ${attempt}`;
    return row?.error ?? null;
  };

  it('when a production endpoint name resolves to a private, loopback, link-local, shared or multicast address, then the attempt is refused before connecting, and says why', async () => {
    const answers = [
      ['10.0.0.7'],
      ['169.254.169.254'],
      ['100.64.1.1'],
      // The receiver of this test: a connection would reach it.
      ['127.0.0.1'],
      ['::1'],
      ['fd12:3456::1'],
      ['fe80::1'],
      ['::ffff:10.0.0.1'],
      ['224.0.0.5'],
      // One private address among public ones is enough to refuse: the connection could use it.
      ['93.184.216.34', '10.1.2.3'],
    ];
    const resolver = scriptedResolver(...answers);
    const { deliveryId } = await deliveryTo(`https://hooks.customer.example:${port}/hooks`);
    const before = received.length;
    for (const [index, answer] of answers.entries()) {
      const result = await activities(resolver, true).attemptWebhookDelivery({
        deliveryId,
        attempt: index + 1,
      });
      expect([answer, result]).toEqual([answer, { outcome: 'retrying', responseStatus: null }]);
      const error = await attemptError(deliveryId, index + 1);
      expect([answer, error]).toEqual([
        answer,
        expect.stringMatching(
          new RegExp(
            `^url refused: hooks\\.customer\\.example resolves to ${answer.at(-1)!.replace(/[.:]/g, '\\$&')}`,
          ),
        ),
      ]);
    }
    expect(resolver.calls).toEqual(answers.map(() => 'hooks.customer.example'));
    expect(received).toHaveLength(before);
  });

  it('when the name would resolve to another address the second time, then the attempt connects to the address it checked, once resolved', async () => {
    // Loopback is allowed outside production; a second resolution would answer a private address.
    const resolver = scriptedResolver(['127.0.0.1'], ['10.0.0.9']);
    const { endpointId, deliveryId } = await deliveryTo(`http://rebind.localhost:${port}/hooks`);
    const before = received.length;
    await expect(
      activities(resolver, false).attemptWebhookDelivery({ deliveryId, attempt: 1 }),
    ).resolves.toEqual({ outcome: 'delivered', responseStatus: 200 });
    expect(resolver.calls).toEqual(['rebind.localhost']);
    // Sent to the address checked, under the endpoint's own name.
    expect(received.slice(before)).toEqual([{ host: `rebind.localhost:${port}` }]);

    // The next attempt resolves again, and checks again: now the name points elsewhere.
    expect(
      (await h.api('POST', `/v1/webhook-endpoints/${endpointId}/deliveries/${deliveryId}/resend`)).status,
    ).toBe(202);
    await expect(
      activities(resolver, false).attemptWebhookDelivery({ deliveryId, attempt: 2 }),
    ).resolves.toEqual({ outcome: 'retrying', responseStatus: null });
    expect(resolver.calls).toEqual(['rebind.localhost', 'rebind.localhost']);
    expect(await attemptError(deliveryId, 2)).toMatch(
      /^url refused: rebind\.localhost resolves to 10\.0\.0\.9/,
    );
    expect(received.slice(before)).toHaveLength(1);
  });

  it('when outside production a name or an address is neither loopback nor public, then it is refused too', async () => {
    const plain = scriptedResolver(['192.168.1.20']);
    const named = await deliveryTo(`http://printer.localhost:${port}/hooks`);
    await expect(
      activities(plain, false).attemptWebhookDelivery({ deliveryId: named.deliveryId, attempt: 1 }),
    ).resolves.toEqual({ outcome: 'retrying', responseStatus: null });
    expect(await attemptError(named.deliveryId, 1)).toMatch(
      /^url refused: printer\.localhost resolves to 192\.168\.1\.20/,
    );

    const literal = await deliveryTo('https://10.20.30.40:9/hooks');
    const unused = scriptedResolver();
    await expect(
      activities(unused, false).attemptWebhookDelivery({ deliveryId: literal.deliveryId, attempt: 1 }),
    ).resolves.toEqual({ outcome: 'retrying', responseStatus: null });
    expect(await attemptError(literal.deliveryId, 1)).toMatch(/^url refused: 10\.20\.30\.40 /);
    expect(unused.calls).toEqual([]);
  });
});
