import { randomUUID } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import { checkedBalance, grantDirectly } from '../support/billing';
import { ADMIN_API_KEY, startAppWith, startHarness, type Harness } from '../support/harness';
import { TEST_CODEC_TOKEN } from '../support/payload-keys';

/**
 * A body that is not what its Content-Encoding says, or in an encoding the service does not
 * decode, is the client's mistake: a 4xx with a stable code, logged without the body, and nothing
 * changes. Stripe's webhook has the same cases in test/stripe/webhook-hostile-input.test.ts.
 */
describe('request bodies and their Content-Encoding', () => {
  let h: Harness;
  let app: { url: string; close: () => Promise<void> };
  const logLines: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    app = await startAppWith(h, { logger });
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  async function post(path: string, contentEncoding: string, body: Buffer, token = ADMIN_API_KEY) {
    const response = await fetch(`${app.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-encoding': contentEncoding,
      },
      body,
    });
    return { status: response.status, body: (await response.json()) as any };
  }

  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const CORRUPT: Array<[string, string, (body: Buffer) => Buffer]> = [
    ['gzip', 'plain JSON', (body) => body],
    ['deflate', 'plain JSON', (body) => body],
    ['br', 'plain JSON', (body) => body],
    ['gzip', 'a gzip stream cut short', (body) => gzipSync(body).subarray(0, -8)],
    ['deflate', 'a deflate stream cut short', (body) => deflateSync(body).subarray(0, 4)],
    ['br', 'a brotli stream cut short', (body) => brotliCompressSync(body).subarray(0, 5)],
  ];

  const malformedBody = (contentEncoding: string) => ({
    status: 400,
    body: { error: { code: 'malformed_body', message: expect.stringContaining(contentEncoding) } },
  });
  const unsupportedEncoding = {
    status: 415,
    body: { error: { code: 'unsupported_content_encoding', message: expect.any(String) } },
  };

  it.each(CORRUPT)(
    'when an account is created with a body sent as %s that is %s, then 400 malformed_body and no account exists',
    async (contentEncoding, _what, encode) => {
      const id = `acct_${randomUUID()}`;
      const answer = await post('/v1/accounts', contentEncoding, encode(json({ id, email: 'a@b.example' })));
      expect(answer).toEqual(malformedBody(contentEncoding));
      expect((await h.api('GET', `/v1/accounts/${id}`)).status).toBe(404);
    },
  );

  it.each(CORRUPT)(
    'when a debit is sent as %s but is %s, then 400 malformed_body and the balance and ledger are unchanged',
    async (contentEncoding, _what, encode) => {
      const account = await h.newAccount();
      await grantDirectly(h.sql, account.id, { key: 'funds', amount: 100 });
      const debit = { amount: 5, idempotencyKey: `job-${randomUUID()}`, reason: 'render' };
      const answer = await post(`/v1/accounts/${account.id}/debits`, contentEncoding, encode(json(debit)));
      expect(answer).toEqual(malformedBody(contentEncoding));
      expect(await checkedBalance(h, account.id)).toBe(100);
      const ledger = await h.api('GET', `/v1/accounts/${account.id}/ledger`);
      const entries = ledger.body.entries as Array<{ kind: string }>;
      expect(entries.filter((entry) => entry.kind === 'debit')).toEqual([]);
    },
  );

  it.each(CORRUPT)(
    'when the codec server is sent a body as %s that is %s, then 400 malformed_body',
    async (contentEncoding, _what, encode) => {
      const answer = await post(
        '/codec/decode',
        contentEncoding,
        encode(json({ payloads: [] })),
        TEST_CODEC_TOKEN,
      );
      expect(answer).toEqual(malformedBody(contentEncoding));
    },
  );

  it.each(['compress', 'x-gzip', 'gzip, br', 'identity, gzip'])(
    'when a body is sent with Content-Encoding %s, which the service does not decode, then 415 unsupported_content_encoding on /v1 and /codec, and nothing is created',
    async (contentEncoding) => {
      const id = `acct_${randomUUID()}`;
      const created = await post('/v1/accounts', contentEncoding, json({ id, email: 'a@b.example' }));
      expect(created).toEqual(unsupportedEncoding);
      expect((await h.api('GET', `/v1/accounts/${id}`)).status).toBe(404);
      const decoded = await post('/codec/decode', contentEncoding, json({ payloads: [] }), TEST_CODEC_TOKEN);
      expect(decoded).toEqual(unsupportedEncoding);
    },
  );

  it('when a well-formed gzip body is sent, then it is decoded and served as usual', async () => {
    const id = `acct_${randomUUID()}`;
    const answer = await post('/v1/accounts', 'gzip', gzipSync(json({ id, email: 'a@b.example' })));
    expect(answer).toMatchObject({ status: 201, body: { id, balance: 0 } });
  });

  it('when a body cannot be read (corrupt encoding or malformed JSON), then the refusal is logged with its code and path, never with the body', async () => {
    const marker = `marker-${randomUUID()}`;
    const corrupt = await post('/v1/accounts', 'gzip', json({ id: marker, email: `${marker}@b.example` }));
    expect(corrupt.status).toBe(400);
    const malformed = await post('/v1/accounts', 'identity', Buffer.from(`{"id": "${marker}", `));
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'malformed_json' } } });

    const logged = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ code: 'malformed_body', path: '/v1/accounts', contentEncoding: 'gzip' }),
        expect.objectContaining({ code: 'malformed_json', path: '/v1/accounts' }),
      ]),
    );
    expect(logLines.filter((line) => line.includes(marker))).toEqual([]);
  });
});
