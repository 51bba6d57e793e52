import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { routeStripeEvent } from '../stripe/event-routes';
import { EncryptionCodec, PayloadKeyRing, generatePayloadKey } from '../config/payload-codec';
import { checkoutSession, stripeEvent } from '../stripe/fixtures/index';

/**
 * What the payload codec costs per payload, in-process: encrypt + decrypt of payloads shaped like
 * the service's (a purchase workflow's input, an activity's answer, a 16 kB one), and what
 * deflate before encrypting would save and cost. No server is needed.
 *
 *   npx tsx scripts/bench-codec.ts [--iterations 20000]
 */

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20000' } } });
const iterations = Number(values.iterations);

const route = routeStripeEvent(
  stripeEvent(
    'checkout.session.completed',
    checkoutSession({ accountId: 'acct_7f3c2a9e-5d1b-4c8e-9a6f-2b4d8e1c3f5a', packId: 'starter' }),
  ),
  { purchaseReviewTimeout: '7 days', receiptDeadline: '3 days' },
);
if (route.action !== 'start') throw new Error('the purchase event starts no workflow');
const samples: Record<string, Payload> = {
  'purchase input': defaultPayloadConverter.toPayload(route.args[0]),
  'activity answer': defaultPayloadConverter.toPayload({
    applied: true,
    ledgerEntryId: 123456,
    receiptKey: 'receipt:cs_test_a1b2c3d4e5f6g7h8i9j0',
    balanceAfter: 1100,
  }),
  '16 kB JSON': defaultPayloadConverter.toPayload({
    rows: Array.from({ length: 360 }, (_, index) => ({ id: index, note: `row ${index} of a larger answer` })),
  }),
};

const codec = new EncryptionCodec(PayloadKeyRing.from(generatePayloadKey('bench')));

async function microseconds(run: () => unknown): Promise<number> {
  for (let index = 0; index < Math.min(1000, iterations); index += 1) await run(); // warm-up
  const started = performance.now();
  for (let index = 0; index < iterations; index += 1) await run();
  return ((performance.now() - started) * 1000) / iterations;
}

async function main(): Promise<void> {
  const rows: string[][] = [
    ['payload', 'bytes', 'encrypted', 'encrypt+decrypt µs', 'deflated', 'deflate+inflate µs'],
  ];
  for (const [name, payload] of Object.entries(samples)) {
    const data = Buffer.from(payload.data ?? []);
    const [sealed] = await codec.encode([payload]);
    const roundTrip = await microseconds(async () => codec.decode(await codec.encode([payload])));
    const deflated = deflateRawSync(data);
    const compression = await microseconds(() => inflateRawSync(deflateRawSync(data)));
    rows.push([
      name,
      String(data.length),
      String(sealed?.data?.length ?? 0),
      roundTrip.toFixed(1),
      `${deflated.length} (${Math.round((100 * deflated.length) / data.length)} %)`,
      compression.toFixed(1),
    ]);
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  for (const row of rows) {
    process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ')}\n`);
  }
  process.stdout.write(`(${iterations} iterations each, node ${process.version})\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
