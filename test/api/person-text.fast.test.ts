import { z } from 'zod';
import { humanText } from '../../api/http/common-schemas';
import { API_ROUTES } from '../../api/routes/index';

const reason = humanText(500);

/** The message of the first issue, or null when the text is accepted. */
function refusal(text: string): string | null {
  const result = reason.safeParse(text);
  return result.success ? null : (result.error.issues[0]?.message ?? '');
}

const hex = (char: string) => `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, index) => String.fromCodePoint(from + index));

describe('text a person wrote (reasons, notes, descriptions)', () => {
  it.each([...range(0x202a, 0x202e), ...range(0x2066, 0x2069), '\u200e', '\u200f', '\u061c'].map(hex))(
    'when it holds the bidirectional control %s, then it is refused by the bidirectional rule',
    (code) => {
      const char = String.fromCodePoint(parseInt(code.slice(2), 16));
      expect(refusal(`render ${char}emarf`)).toMatch(/bidirectional/);
    },
  );

  it.each([...range(0x200b, 0x200b), ...range(0x2060, 0x2064), '\ufeff'].map(hex))(
    'when it holds the invisible character %s, then it is refused by the invisible-character rule',
    (code) => {
      const char = String.fromCodePoint(parseInt(code.slice(2), 16));
      for (const text of [`ren${char}der`, `${char}render`, `render${char}`]) {
        expect(refusal(text)).toMatch(/invisible/);
      }
    },
  );

  it.each([
    ['a ZWJ at the start', '\u200drender'],
    ['a ZWJ at the end', 'render\u200d'],
    ['a ZWNJ beside a space', 'render \u200cframe'],
    ['two joiners in a row', 'ren\u200d\u200dder'],
    ['a ZWJ after punctuation', 'render.\u200dframe'],
  ])(
    'when it holds %s (a joiner that joins nothing), then it is refused by the invisible-character rule',
    (_what, text) => {
      expect(refusal(text)).toMatch(/invisible/);
    },
  );

  it.each([
    ['an emoji ZWJ sequence with a skin tone', 'render 👩🏽‍💻 frame'],
    ['an emoji ZWJ sequence with a variation selector', 'pride 🏳️‍🌈'],
    ['a family emoji', '👨‍👩‍👧'],
    ['Persian with a ZWNJ', 'می‌خواهم'],
    ['Devanagari with a ZWJ after a virama', 'क्‍ष'],
    ['U+2028, a line separator', 'render\u2028frame'],
    ['right-to-left text without controls', 'שלום עולם'],
  ])('when it holds %s, then it is accepted as written', (_what, text) => {
    expect(reason.parse(text)).toBe(text);
  });

  it.each([
    ['a NUL', 'usage\u0000', /control characters/],
    ['a C1 control', 'render\u009b[31m', /control characters/],
    ['a lone surrogate', 'render \ud800 frame', /lone surrogates/],
  ])('when it holds %s, then it is still refused', (_what, text, rule) => {
    expect(refusal(text)).toMatch(rule);
  });

  it('when a route takes free text in its body, then that field refuses bidirectional and invisible characters (one rule for every such field)', () => {
    // A field is free text when it takes words and spaces; URLs are checked by their own rule.
    const unwrap = (schema: z.ZodType): z.ZodType =>
      schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault
        ? unwrap(schema.unwrap() as z.ZodType)
        : schema;
    const fields = API_ROUTES.flatMap((route) => {
      const body = route.body;
      const shape = body instanceof z.ZodObject ? (body.shape as Record<string, z.ZodType>) : {};
      return Object.entries(shape)
        .filter(([name]) => name !== 'url')
        .map(([name, schema]) => ({ name: `${route.method} ${route.path} ${name}`, schema: unwrap(schema) }))
        .filter(({ schema }) => schema.safeParse('image generation, frame 7').success);
    });
    expect(fields.map((field) => field.name)).toEqual(
      expect.arrayContaining([
        'post /v1/accounts/:id/debits reason',
        'post /v1/accounts/:id/grants reason',
        'post /v1/accounts/:id/grants/:grantId/void reason',
        'post /v1/accounts/:id/reservations/:reservationId/capture reason',
        'post /v1/reviews/:workflowId note',
        'post /v1/webhook-endpoints description',
        'patch /v1/webhook-endpoints/:endpointId description',
      ]),
    );
    const lenient = fields.filter(
      ({ schema }) =>
        schema.safeParse('image \u202egeneration').success ||
        schema.safeParse('image\u200b generation').success,
    );
    expect(lenient.map((field) => field.name)).toEqual([]);
  });
});
