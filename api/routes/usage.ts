import { z } from 'zod';
import {
  balanceAt,
  listUsageEvents,
  quoteUsage,
  recordUsage,
  type UsageEvent,
  type UsageEventInput,
  type UsageOutcome,
  type UsagePosition,
} from '../../credits/index';
import { listActiveFeatures } from '../../db/catalog/features';
import type { Feature } from '../../domain/usage-pricing';
import { startBalanceFollowUps } from '../../temporal/follow-ups';
import type { AppDependencies } from '../dependencies';
import { errors } from '../errors';
import {
  accountId,
  accountParams,
  idempotencyKey,
  pageQueryFields,
  positiveCount,
} from '../http/common-schemas';
import { defineRoute } from '../http/route';
import { requireAccount } from './accounts';
import { presentReservation, reservationResponse, reserveCredits } from './reservations';

/**
 * Usage: events ingested by the thousand and burned from grants at once (POST /v1/usage), the
 * check before spending (POST /v1/check), the feature catalogue, an account's events, and its
 * balance at a past moment. The burn runs here, in the API process, in one PostgreSQL
 * transaction per request: a usage event is worth less than a workflow costs (docs/usage.md).
 */

// --- limits -------------------------------------------------------------------------------

/** Events per request. */
export const MAX_EVENTS_PER_REQUEST = 1000;
/** A usage request's body; other routes keep the API's small limit. */
export const USAGE_BODY_LIMIT_BYTES = 1024 * 1024;
/** An event's properties, as JSON. */
export const MAX_PROPERTIES_BYTES = 4096;
const MAX_PROPERTIES_DEPTH = 5;
/** How far ahead of the server's clock an event's timestamp may be. */
const FUTURE_TOLERANCE_MS = 5 * 60_000;
const EARLIEST_TIMESTAMP = Date.UTC(2000, 0, 1);
/** The earliest moment a balance may be asked at. */
const EARLIEST_MOMENT = Date.parse('0001-01-01T00:00:00Z');

// --- schemas ------------------------------------------------------------------------------

/** Text that PostgreSQL stores as sent: no control characters (NUL above all), no lone surrogates. */
const storableText = (text: string) => !/\p{Cc}/u.test(text) && !/\p{Cs}/u.test(text);

const featureKey = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'a feature key of the catalogue')
  .meta({ example: 'llm-tokens' });

const eventId = z
  .string()
  .min(1)
  .max(255)
  .refine(storableText, 'no control characters, well-formed Unicode')
  .meta({
    description: "The client's ID of the event: it counts once per account, forever.",
    example: 'req-8812',
  });

/**
 * JSON may name a key `__proto__`; an object built by assignment cannot keep it as data (zod's
 * record drops it without a word, a client's Object.assign would take it for a prototype).
 * Refused wherever it appears, so that what is stored and fingerprinted is what was sent.
 */
const PROTO_KEY = '__proto__';

/** Every string and key in a properties object, however deep, and its depth. */
function propertiesProblem(value: unknown, depth = 1): string | null {
  if (depth > MAX_PROPERTIES_DEPTH) return `nested deeper than ${MAX_PROPERTIES_DEPTH} levels`;
  if (typeof value === 'string') return storableText(value) ? null : 'a string with control characters';
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = propertiesProblem(item, depth + 1);
      if (problem) return problem;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (!storableText(key)) return 'a key with control characters';
      if (key === PROTO_KEY) return `a key named ${PROTO_KEY}`;
      const problem = propertiesProblem(item, depth + 1);
      if (problem) return problem;
    }
  }
  return null;
}

const properties = z
  .record(z.string(), z.unknown())
  .superRefine((value, ctx) => {
    const problem = propertiesProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
    else if (Buffer.byteLength(JSON.stringify(value)) > MAX_PROPERTIES_BYTES) {
      ctx.addIssue({ code: 'custom', message: `larger than ${MAX_PROPERTIES_BYTES} bytes as JSON` });
    }
  })
  .meta({
    description: `Anything the client wants kept with the event (at most ${MAX_PROPERTIES_BYTES} bytes of JSON, ${MAX_PROPERTIES_DEPTH} levels); cleared after RETENTION_USAGE_PROPERTIES (the event itself is kept: a replay stays a duplicate).`,
    example: { model: 'small', requestId: 'r-1' },
  });

const timestamp = z.iso
  .datetime({ offset: true })
  .refine((value) => {
    const at = Date.parse(value);
    return at >= EARLIEST_TIMESTAMP && at <= Date.now() + FUTURE_TOLERANCE_MS;
  }, 'a time from 2000 on, not in the future')
  .meta({ description: 'When it happened (default: when received).', example: '2026-12-01T10:00:00Z' });

const reservationId = z.string().regex(/^rsv_[0-9a-f]{32}$/, 'a reservation ID (rsv_…)');

/** One usage event, as each is checked: a bad one is refused on its own (`invalid_event`). */
const usageEventFields = z.strictObject({
  id: eventId,
  accountId,
  feature: featureKey,
  quantity: positiveCount.meta({ description: 'Units used (tokens, images, calls…).', example: 1200 }),
  timestamp: timestamp.optional(),
  properties: properties.optional(),
  reservationId: reservationId
    .optional()
    .meta({ description: 'A hold made by POST /v1/check with `reserve`, settled by this event.' }),
});
export const usageEventSchema = usageEventFields.meta({ id: 'UsageEvent' });

// The envelope is validated whole (400, nothing applied); each event on its own. The document
// shows each event's schema.
const usageBody = z
  .strictObject({
    events: z
      .array(
        z.unknown().meta({
          // Written out in place: a named schema here would be a $ref into a document of its own.
          override: z.toJSONSchema(usageEventFields, { io: 'input', unrepresentable: 'any' }),
        }),
      )
      .min(1)
      .max(MAX_EVENTS_PER_REQUEST),
  })
  .meta({ id: 'UsageBatch' });

const eventError = z.object({ code: z.string(), message: z.string() });

const usageResult = z
  .object({
    id: z.string().nullable().meta({ description: 'The event ID as sent (null when it was not text).' }),
    accountId: z
      .string()
      .nullable()
      .meta({ description: 'The account ID as sent (null when it was not text).' }),
    status: z.enum(['accepted', 'duplicate', 'conflict', 'refused']).meta({
      description:
        '`accepted`: its credits are burned. `duplicate`: recorded before (what it burned then). ' +
        '`conflict`: the ID was recorded with another body (`event_id_reused`). `refused`: nothing applied.',
    }),
    credits: z.number().int().optional(),
    ledgerEntryId: z
      .number()
      .int()
      .nullable()
      .optional()
      .meta({ description: 'The ledger row that burned its credits (null until they make a whole credit).' }),
    error: eventError.optional(),
  })
  .meta({ id: 'UsageResult' });

const usageResponse = z
  .object({
    results: z.array(usageResult).meta({ description: 'One per event, in the order sent.' }),
    accepted: z.number().int(),
    duplicates: z.number().int(),
    conflicts: z.number().int(),
    refused: z.number().int(),
    credits: z.number().int().meta({ description: 'Credits the accepted events burned.' }),
  })
  .meta({ id: 'UsageAnswer' });

const checkBody = z
  .strictObject({
    accountId,
    feature: featureKey,
    quantity: positiveCount.meta({ example: 1200 }),
    reserve: z
      .strictObject({
        ttlSeconds: z
          .number()
          .int()
          .min(1)
          .max(7 * 24 * 3600)
          .meta({ example: 600 }),
        idempotencyKey,
      })
      .optional()
      .meta({ description: 'Hold the credits until a usage event names the hold, or the TTL passes.' }),
  })
  .meta({ id: 'Check' });

const checkResponse = z
  .object({
    allowed: z.boolean().meta({ description: 'Whether usage of that quantity would be accepted now.' }),
    credits: z.number().int().meta({ description: 'What it would burn now (fractions accrue).' }),
    available: z.number().int(),
    balance: z.number().int(),
    reservation: reservationResponse.nullable(),
  })
  .meta({ id: 'CheckAnswer' });

const featureResponse = z
  .object({
    key: z.string(),
    name: z.string(),
    credits: z.number().int(),
    units: z.number().int().meta({ description: 'The price is `credits` per `units` units.' }),
    overdraft: z.enum(['refuse', 'allow']).meta({
      description: '`refuse`: usage beyond the available credits is refused. `allow`: it is owed as debt.',
    }),
  })
  .meta({ id: 'Feature' });

const usageQuery = z.strictObject({
  ...pageQueryFields('Events'),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a cursor returned by a previous page')
    .optional()
    .meta({ description: 'The `nextCursor` of the previous page.' }),
  ledgerEntryId: z.coerce
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .meta({ description: 'Only the events whose credits this ledger row burned.' }),
});

const storedEvent = z
  .object({
    id: z.string(),
    feature: z.string(),
    quantity: z.number().int(),
    timestamp: z.iso.datetime(),
    receivedAt: z.iso.datetime(),
    properties: z.record(z.string(), z.unknown()).nullable(),
    credits: z.number().int(),
    ledgerEntryId: z.number().int().nullable(),
    reservationId: z.string().nullable(),
  })
  .meta({ id: 'StoredUsageEvent' });

const usagePage = z
  .object({ events: z.array(storedEvent), nextCursor: z.string().nullable() })
  .meta({ id: 'UsagePage' });

const balanceQuery = z.strictObject({
  at: z.iso
    .datetime({ offset: true })
    // PostgreSQL has no year 0 (the ISO year 0000 is 1 BC): from year 1 on.
    .refine((value) => {
      const at = Date.parse(value);
      return at >= EARLIEST_MOMENT && at <= Date.now();
    }, 'a moment from year 1 on, not in the future')
    .meta({ description: 'The moment, ISO 8601.', example: '2026-12-01T00:00:00Z' }),
});

const balanceAtResponse = z
  .object({
    at: z.iso.datetime(),
    balance: z.number().int(),
    held: z.number().int(),
    available: z.number().int(),
    ledgerEntryId: z
      .number()
      .int()
      .nullable()
      .meta({ description: 'The last ledger row at or before `at` (null before the first).' }),
  })
  .meta({ id: 'BalanceAt' });

// --- operations ---------------------------------------------------------------------------

type Checked = { event: UsageEventInput } | { problem: string };

/** One event of the request checked on its own: what it asks, or why it is invalid. */
export function checkEvent(raw: unknown): Checked {
  // Deeper levels reach propertiesProblem as sent; the top level only as the record parsed it.
  const sent = (raw as { properties?: unknown } | null)?.properties;
  if (sent !== null && typeof sent === 'object' && Object.hasOwn(sent, PROTO_KEY)) {
    return { problem: `properties: a key named ${PROTO_KEY}` };
  }
  const parsed = usageEventSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      problem: parsed.error.issues
        .map((issue) => `${issue.path.join('.') || 'event'}: ${issue.message}`)
        .join('; '),
    };
  }
  const event = parsed.data;
  return {
    event: {
      accountId: event.accountId,
      eventId: event.id,
      feature: event.feature,
      quantity: event.quantity,
      occurredAt: event.timestamp === undefined ? null : new Date(event.timestamp),
      properties: event.properties ?? null,
      reservationId: event.reservationId ?? null,
    },
  };
}

/** The same (account, event ID) twice in one request: the request is refused whole. */
function refuseRepeatedIds(events: readonly unknown[]): void {
  const seen = new Map<string, number>();
  events.forEach((raw, index) => {
    const { id, accountId: account } = (raw ?? {}) as { id?: unknown; accountId?: unknown };
    if (typeof id !== 'string' || typeof account !== 'string') return;
    // Not joined by a separator: unchecked text may hold any separator (an invalid account
    // "a\u0000b" with ID "c" is not account "a" with ID "b\u0000c").
    const key = JSON.stringify([account, id]);
    const first = seen.get(key);
    if (first !== undefined) {
      throw errors.invalidValue(`events.${index}.id`, `repeats events.${first}.id for the same account`);
    }
    seen.set(key, index);
  });
}

/**
 * Records the valid events in one transaction, answers each event in the order sent, and starts
 * what the burn asked for (a low-balance notice, a top-up) once it committed.
 */
async function ingestUsage(deps: AppDependencies, raw: readonly unknown[]) {
  refuseRepeatedIds(raw);
  const checked = raw.map(checkEvent);
  const valid = checked.flatMap((item) => ('event' in item ? [item.event] : []));
  const batch = await recordUsage(deps.sql, valid);
  await Promise.all(batch.followUps.map((account) => startBalanceFollowUps(deps, account)));
  let next = 0;
  return checked.map((item, index): { raw: unknown; outcome: UsageOutcome } => ({
    raw: raw[index],
    outcome:
      'event' in item
        ? (batch.outcomes[next++] as UsageOutcome)
        : { status: 'refused', code: 'invalid_event', message: item.problem },
  }));
}

/** A check, and the hold when asked and allowed; without `reserve`, one read and no write. */
async function checkUsage(deps: AppDependencies, request: z.output<typeof checkBody>) {
  const quote = await quoteUsage(deps.sql, request);
  if (!request.reserve || !quote.allowed || quote.credits === 0) return { quote, reservation: null };
  try {
    const { reservation } = await reserveCredits(deps, request.accountId, {
      amount: quote.credits,
      ...request.reserve,
    });
    return { quote, reservation };
  } catch (error) {
    // Spent meanwhile: the answer is the check's, not an error.
    if ((error as { code?: unknown }).code === 'insufficient_credits') {
      return { quote: { ...quote, allowed: false }, reservation: null };
    }
    throw error;
  }
}

const MAX_BIGINT = 2n ** 63n - 1n;

const encodePosition = (position: UsagePosition) =>
  Buffer.from(`${position.receivedAtMicros}.${position.seq}`).toString('base64url');

function decodePosition(cursor: string | undefined): UsagePosition | null {
  if (cursor === undefined) return null;
  const match = /^(\d{1,19})\.(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString());
  // Both are PostgreSQL bigints: nineteen digits may be more than one holds.
  if (!match?.[1] || !match[2] || BigInt(match[1]) > MAX_BIGINT || BigInt(match[2]) > MAX_BIGINT) {
    throw errors.invalidValue('cursor', 'not a cursor this API returned');
  }
  return { receivedAtMicros: match[1], seq: match[2] };
}

async function usagePageOf(deps: AppDependencies, id: string, query: z.output<typeof usageQuery>) {
  const after = decodePosition(query.cursor);
  const rows = await listUsageEvents(deps.sql, id, {
    limit: query.limit + 1,
    after,
    ledgerEntryId: query.ledgerEntryId ?? null,
  });
  // An account with no events and one that does not exist look alike: tell them apart.
  if (rows.length === 0 && after === null) await requireAccount(deps.sql, id);
  const items = rows.slice(0, query.limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > query.limit && last ? encodePosition(last.position) : null };
}

// --- presenting ---------------------------------------------------------------------------

/**
 * The event's ID and account as sent, when they are text: anything else (an object, an array
 * nested 100,000 deep) is not echoed back, since it is no ID and might not even serialize.
 */
const sentText = (value: unknown) => (typeof value === 'string' ? value : null);

function presentResult({ raw, outcome }: { raw: unknown; outcome: UsageOutcome }) {
  const { id, accountId: account } = (raw !== null && typeof raw === 'object' ? raw : {}) as {
    id?: unknown;
    accountId?: unknown;
  };
  const base = { id: sentText(id), accountId: sentText(account), status: outcome.status };
  switch (outcome.status) {
    case 'accepted':
    case 'duplicate':
      return { ...base, credits: outcome.credits, ledgerEntryId: outcome.ledgerEntryId };
    case 'conflict':
    case 'refused':
      return { ...base, error: { code: outcome.code, message: outcome.message } };
  }
}

function presentBatch(results: ReadonlyArray<{ raw: unknown; outcome: UsageOutcome }>) {
  const count = (status: UsageOutcome['status']) => results.filter((r) => r.outcome.status === status).length;
  return {
    results: results.map(presentResult),
    accepted: count('accepted'),
    duplicates: count('duplicate'),
    conflicts: count('conflict'),
    refused: count('refused'),
    credits: results.reduce((sum, r) => sum + (r.outcome.status === 'accepted' ? r.outcome.credits : 0), 0),
  };
}

const presentFeature = ({ key, name, credits, units, overdraft }: Feature) => ({
  key,
  name,
  credits,
  units,
  overdraft,
});

const presentEvent = (event: UsageEvent) => ({
  id: event.eventId,
  feature: event.feature,
  quantity: event.quantity,
  timestamp: event.occurredAt.toISOString(),
  receivedAt: event.receivedAt.toISOString(),
  properties: event.properties,
  credits: event.credits,
  ledgerEntryId: event.ledgerEntryId,
  reservationId: event.reservationId,
});

// --- routes -------------------------------------------------------------------------------

export const usageRoutes = [
  defineRoute({
    method: 'post',
    path: '/v1/usage',
    role: 'write',
    summary: 'Record usage events and burn their credits, up to 1,000 per request',
    description:
      'Each event counts once per (account, event ID), forever: a replay answers `duplicate` with what it ' +
      'burned the first time. The answer comes once every accepted event has burned its credits. A request ' +
      'is not all-or-nothing across events: each is accepted, a duplicate, a conflict, or refused with a ' +
      'stable code (`account_not_found`, `feature_not_found`, `insufficient_credits`, `invalid_event`, ' +
      '`reservation_not_found`, `reservation_settled`, `balance_out_of_range`), and each is applied whole ' +
      `or not at all. The body holds at most ${USAGE_BODY_LIMIT_BYTES / 1024} KiB.`,
    bodyLimitBytes: USAGE_BODY_LIMIT_BYTES,
    body: usageBody,
    responses: { 200: ['One result per event.', usageResponse] },
    errors: {
      400: 'Not a batch of 1 to 1,000 events, or an event ID twice for one account (`invalid_request`): nothing applied.',
      413: 'The body is over the limit (`payload_too_large`): nothing applied.',
      503: 'The database is unavailable (`database_unavailable`): nothing applied; send it again.',
    },
    handler: async ({ body, deps }) => ({
      status: 200,
      body: presentBatch(await ingestUsage(deps, body.events)),
    }),
  }),

  defineRoute({
    method: 'post',
    path: '/v1/check',
    role: 'write',
    summary: 'May this account use this much of a feature now? Optionally hold the credits',
    description:
      'Without `reserve`: one read, nothing written. With it, and allowed: a hold of the credits (a ' +
      'reservation with a TTL) that a usage event settles by naming it (`reservationId`).',
    body: checkBody,
    responses: { 200: ['The answer (and the hold, when one was made).', checkResponse] },
    errors: {
      400: '`invalid_request`.',
      404: '`account_not_found`, `feature_not_found`.',
      409: 'The reservation key was used with another amount or TTL (`idempotency_key_reused`).',
    },
    handler: async ({ body, deps }) => {
      const { quote, reservation } = await checkUsage(deps, body);
      return {
        status: 200,
        body: {
          allowed: quote.allowed,
          credits: quote.credits,
          available: quote.available,
          balance: quote.balance,
          reservation: reservation ? presentReservation(reservation) : null,
        },
      };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/features',
    role: 'read',
    summary: 'List the features usage may name, with their prices',
    responses: {
      200: [
        'The active catalogue.',
        z.object({ features: z.array(featureResponse) }).meta({ id: 'FeatureList' }),
      ],
    },
    errors: {},
    handler: async ({ deps }) => ({
      status: 200,
      body: { features: (await listActiveFeatures(deps.sql)).map(presentFeature) },
    }),
  }),

  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/usage',
    role: 'read',
    summary: "Page through an account's usage events, newest first (or those of one ledger row)",
    params: accountParams,
    query: usageQuery,
    responses: { 200: ['One page; `nextCursor` is null on the last.', usagePage] },
    errors: { 400: 'Bad limit, cursor or ledger entry.', 404: '`account_not_found`.' },
    handler: async ({ params, query, deps }) => {
      const { items, nextCursor } = await usagePageOf(deps, params.id, query);
      return { status: 200, body: { events: items.map(presentEvent), nextCursor } };
    },
  }),

  defineRoute({
    method: 'get',
    path: '/v1/accounts/:id/balance',
    role: 'read',
    summary: 'The balance and available credits as they were at a past moment',
    description:
      'From the ledger: the balance the last ledger row at or before `at` left, the credits held by holds ' +
      'open at that moment, and what was available (the balance less what was held; below zero only by debt).',
    params: accountParams,
    query: balanceQuery,
    responses: { 200: ['The balance then.', balanceAtResponse] },
    errors: {
      400: '`at` missing, unparsable or in the future (`invalid_request`).',
      404: '`account_not_found`.',
    },
    handler: async ({ params, query, deps }) => {
      const at = new Date(query.at);
      const then = await balanceAt(deps.sql, params.id, at);
      return { status: 200, body: { at: at.toISOString(), ...then } };
    },
  }),
];
