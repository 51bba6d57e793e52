import { checkEvent, usageEventSchema } from '../../api/routes/usage';
import { usageFingerprint, type UsageEventInput } from '../../credits/usage';
import { creditsForEvent, creditsForUnits } from '../../domain/usage-pricing';

/**
 * A usage event as a hostile or careless client writes it, checked by the rules alone (no
 * services): what the event schema accepts, what it refuses with a message, and which bodies the
 * fingerprint treats as the same event. Bodies are written as JSON text and parsed as the API's
 * body parser does, so that escapes (`\u0000`, `\ud800`), float literals and repeated keys reach
 * the schema as they would over HTTP.
 */
describe('usage events written by a hostile client', () => {
  const base = { id: 'evt-1', accountId: 'acct_1', feature: 'llm-tokens', quantity: 5 };
  /** An event with `fields` replaced, written as JSON text with `raw` spliced in as written. */
  const parse = (json: string) => usageEventSchema.safeParse(JSON.parse(json));
  const withRaw = (field: string, raw: string) => {
    const others = Object.entries(base)
      .filter(([key]) => key !== field)
      .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    return parse(`{${[...others, `${JSON.stringify(field)}:${raw}`].join(',')}}`);
  };
  const messages = (result: ReturnType<typeof parse>) =>
    result.success ? [] : result.error.issues.map((issue) => issue.message);
  const input = (overrides: Partial<UsageEventInput> = {}): UsageEventInput => ({
    accountId: 'acct_1',
    eventId: 'evt-1',
    feature: 'llm-tokens',
    quantity: 5,
    occurredAt: null,
    properties: null,
    reservationId: null,
    ...overrides,
  });
  const fingerprint = (overrides: Partial<UsageEventInput> = {}) =>
    usageFingerprint(input(overrides)).toString('hex');

  describe('properties', () => {
    it('when properties carry a __proto__ key at any depth, then the event is refused, not stored without it', () => {
      for (const properties of [
        '{"__proto__":{"admin":true},"model":"small"}',
        '{"model":{"__proto__":{"admin":true}}}',
        '{"list":[{"__proto__":1}]}',
      ]) {
        const raw = JSON.parse(
          `{"id":"evt-1","accountId":"acct_1","feature":"llm-tokens","quantity":5,"properties":${properties}}`,
        );
        const checked = checkEvent(raw);
        expect(checked).toEqual({ problem: expect.stringContaining('a key named __proto__') });
      }
      // Nothing leaked into the prototypes either way.
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
      // An event's own __proto__ key is an unknown field like any other.
      expect(
        checkEvent(JSON.parse('{"id":"e","accountId":"a","feature":"f","quantity":1,"__proto__":{}}')),
      ).toEqual({
        problem: expect.stringContaining('__proto__'),
      });
    });

    it('when properties carry constructor or prototype keys, then they are kept as plain data', () => {
      const result = withRaw('properties', '{"constructor":{"name":"x"},"prototype":1,"toString":"s"}');
      expect(result.success).toBe(true);
      expect(result.data?.properties).toEqual({ constructor: { name: 'x' }, prototype: 1, toString: 's' });
      expect(Object.getPrototypeOf(result.data?.properties)).toBe(Object.prototype);
    });

    it('when properties are an array, a number, a string or null, then the event is refused', () => {
      for (const raw of ['[1,2]', '5', '"x"', 'null', 'true']) {
        expect(withRaw('properties', raw).success).toBe(false);
      }
    });

    it('when a properties key or value holds an escaped NUL or a lone surrogate, then the event is refused', () => {
      for (const raw of ['{"a\\u0000":1}', '{"a":"b\\u0000"}', '{"\\ud800":1}', '{"a":["\\udfff"]}']) {
        const result = withRaw('properties', raw);
        expect(result.success).toBe(false);
        expect(messages(result).join()).toMatch(/control characters/);
      }
    });

    it('when properties nest five levels, then they are kept; six, then the event is refused', () => {
      const nested = (levels: number) => '{"d":'.repeat(levels - 1) + '{"d":1}' + '}'.repeat(levels - 1);
      expect(withRaw('properties', nested(4)).success).toBe(true);
      expect(messages(withRaw('properties', nested(5))).join()).toMatch(/deeper than 5/);
      // Far deeper than any parser's stack would like: refused as quickly.
      expect(messages(withRaw('properties', nested(10_000))).join()).toMatch(/deeper than 5/);
    });

    it('when the same properties come in another key order, then the fingerprint is the same; in another array order, it is not', () => {
      expect(fingerprint({ properties: { a: 1, b: { c: 2, d: 3 } } })).toBe(
        fingerprint({ properties: { b: { d: 3, c: 2 }, a: 1 } }),
      );
      expect(fingerprint({ properties: { list: [1, 2] } })).not.toBe(
        fingerprint({ properties: { list: [2, 1] } }),
      );
      // No properties and empty properties are different bodies, as are 1 and "1".
      expect(fingerprint({ properties: null })).not.toBe(fingerprint({ properties: {} }));
      expect(fingerprint({ properties: { a: 1 } })).not.toBe(fingerprint({ properties: { a: '1' } }));
    });
  });

  describe('IDs', () => {
    it('when an event ID is written with a lone surrogate escape, then it is refused; a surrogate pair is a character like any other', () => {
      expect(messages(withRaw('id', '"evt-\\ud800"')).join()).toMatch(/well-formed Unicode/);
      expect(messages(withRaw('id', '"evt-\\udc00x"')).join()).toMatch(/well-formed Unicode/);
      expect(messages(withRaw('id', '"\\u0000"')).join()).toMatch(/control characters/);
      const pair = withRaw('id', '"evt-\\ud83d\\ude00-é-日本"');
      expect(pair.success).toBe(true);
      expect(pair.data?.id).toBe('evt-😀-é-日本');
    });

    it('when an event ID is 255 characters long, then it is accepted; at 256 it is refused, counted as PostgreSQL counts them', () => {
      expect(withRaw('id', JSON.stringify('x'.repeat(255))).success).toBe(true);
      expect(withRaw('id', JSON.stringify('x'.repeat(256))).success).toBe(false);
      // An astral character is one character (two UTF-16 units, four bytes), as length(event_id) counts it.
      expect(withRaw('id', JSON.stringify('😀'.repeat(255))).success).toBe(true);
      expect(withRaw('id', JSON.stringify('😀'.repeat(256))).success).toBe(false);
    });

    it('when an account ID is not ASCII or is 129 characters, then the event is refused', () => {
      for (const id of ['acct_é', 'acct_😀', 'a'.repeat(129), '', '-leading', 'acct 1', 'acct\u0000']) {
        expect(withRaw('accountId', JSON.stringify(id)).success).toBe(false);
      }
      expect(withRaw('accountId', JSON.stringify('a'.repeat(128))).success).toBe(true);
    });
  });

  describe('quantities', () => {
    it('when a quantity is written 1000.0 or 1e3, then it is the integer 1000 and the same body as 1000', () => {
      for (const raw of ['1000.0', '1e3', '1000.000', '1E+3', '10000e-1']) {
        const result = withRaw('quantity', raw);
        expect(result.success).toBe(true);
        expect(result.data?.quantity).toBe(1000);
      }
    });

    it('when a quantity is a string, -0, a fraction, past 2^53 or not finite in spirit, then the event is refused', () => {
      for (const raw of [
        '"5"',
        '-0',
        '0',
        '0.5',
        '1e-3',
        '9007199254740992',
        '1e400',
        'null',
        '[5]',
        'true',
      ]) {
        expect(withRaw('quantity', raw).success).toBe(false);
      }
      expect(withRaw('quantity', '9007199254740991').success).toBe(true);
    });

    it('when the same key comes twice in an event, then the last one counts, and the fingerprint is of what is stored', () => {
      const twice = parse(
        '{"id":"evt-1","accountId":"acct_1","feature":"llm-tokens","quantity":1,"quantity":7}',
      );
      expect(twice.data?.quantity).toBe(7);
      expect(fingerprint({ quantity: 7 })).not.toBe(fingerprint({ quantity: 1 }));
    });

    it('when a meter and an event pass 2^53 units, then each event burns exactly the credits its units complete', () => {
      const price = { credits: 1, units: 1000 };
      const max = BigInt(Number.MAX_SAFE_INTEGER);
      let accrued = 0n;
      let burned = 0n;
      for (const quantity of [max, max, 999n, 1n, max]) {
        burned += creditsForEvent(accrued, quantity, price);
        accrued += quantity;
        expect(burned).toBe(creditsForUnits(accrued, price));
      }
      expect(accrued).toBe(3n * max + 1000n);
      expect(burned).toBe((3n * max + 1000n) / 1000n);
    });
  });

  describe('timestamps', () => {
    const at = (value: string) => withRaw('timestamp', JSON.stringify(value));
    const occurred = (value: string) => {
      const result = at(value);
      if (!result.success || result.data.timestamp === undefined) throw new Error(`refused: ${value}`);
      return new Date(result.data.timestamp);
    };

    it('when a timestamp names the same instant with another offset, then it is the same body', () => {
      const utc = occurred('2026-01-01T00:00:00Z');
      for (const value of [
        '2026-01-01T02:00:00+02:00',
        '2025-12-31T19:30:00-04:30',
        '2026-01-01T00:00:00.000Z',
      ]) {
        expect(fingerprint({ occurredAt: occurred(value) })).toBe(fingerprint({ occurredAt: utc }));
      }
      // A timestamp given and none given are different bodies.
      expect(fingerprint({ occurredAt: utc })).not.toBe(fingerprint({ occurredAt: null }));
    });

    it('when a timestamp carries microseconds, then it counts to the millisecond (what is stored and compared)', () => {
      expect(occurred('2026-01-01T00:00:00.123456Z').toISOString()).toBe('2026-01-01T00:00:00.123Z');
      expect(fingerprint({ occurredAt: occurred('2026-01-01T00:00:00.123456Z') })).toBe(
        fingerprint({ occurredAt: occurred('2026-01-01T00:00:00.123999Z') }),
      );
    });

    it('when a timestamp is invalid, without an offset, before 2000 or in the future, then the event is refused', () => {
      const future = new Date(Date.now() + 10 * 60_000).toISOString();
      for (const value of [
        '2026-02-30T00:00:00Z',
        '2026-13-01T00:00:00Z',
        '2016-12-31T23:59:60Z',
        '2026-01-01T00:00:00',
        '2026-01-01',
        '2026-01-01t00:00:00z',
        '1999-12-31T23:59:59Z',
        '0000-01-01T00:00:00Z',
        '+275760-09-13T00:00:00Z',
        '2999-01-01T00:00:00Z',
        future,
        '',
        'now',
      ]) {
        expect([value, at(value).success]).toEqual([value, false]);
      }
      expect(at('2000-01-01T00:00:00Z').success).toBe(true);
      expect(at('2024-02-29T23:59:59.999+14:00').success).toBe(true);
      expect(at(new Date(Date.now() + 60_000).toISOString()).success).toBe(true);
    });
  });
});
