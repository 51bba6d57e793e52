import { z } from 'zod';

/**
 * The events the service sends to its clients' webhook endpoints. `credits.debited` is sent only
 * to endpoints that name it: a busy account debits far more often than anything else happens.
 */
export const OUTBOUND_EVENT_TYPES = [
  'credits.granted',
  'credits.revoked',
  'credits.expired',
  'credits.debited',
  'balance.low',
  'purchase.held_for_review',
  'purchase.completed',
  'topup.succeeded',
  'topup.failed',
] as const;

export const outboundEventTypeSchema = z.enum(OUTBOUND_EVENT_TYPES);
export type OutboundEventType = z.infer<typeof outboundEventTypeSchema>;

/** Types an endpoint receives only when it lists them. */
export const OPT_IN_EVENT_TYPES: readonly OutboundEventType[] = ['credits.debited'];

/** An endpoint created without a list of types receives these. */
export const DEFAULT_EVENT_TYPES: readonly OutboundEventType[] = OUTBOUND_EVENT_TYPES.filter(
  (type) => !OPT_IN_EVENT_TYPES.includes(type),
);

/** The version of the payload envelope and of each type's `data`; a change that breaks readers bumps it. */
export const OUTBOUND_API_VERSION = '2026-12-01';

/** What an endpoint receives, as JSON: the body of the POST that is signed. */
export interface OutboundEventEnvelope<T extends OutboundEventType = OutboundEventType> {
  id: string;
  object: 'event';
  type: T;
  api_version: typeof OUTBOUND_API_VERSION;
  /** When the change committed, ISO 8601. */
  created: string;
  account_id: string;
  data: Record<string, unknown>;
}

export const outboundEventIdSchema = z.string().regex(/^evt_[A-Za-z0-9_]{1,120}$/);

export function buildEnvelope(event: {
  id: string;
  type: OutboundEventType;
  accountId: string;
  data: Record<string, unknown>;
  createdAt: Date;
}): OutboundEventEnvelope {
  return {
    id: event.id,
    object: 'event',
    type: event.type,
    api_version: OUTBOUND_API_VERSION,
    created: event.createdAt.toISOString(),
    account_id: event.accountId,
    data: event.data,
  };
}

// --- endpoint URLs ----------------------------------------------------------------------------

export const MAX_ENDPOINT_URL_LENGTH = 2048;

// IP literals of this machine's and private networks (cloud metadata included), shared (carrier
// NAT), multicast and reserved space: never a client's endpoint in production. Names that resolve
// to such addresses are the network's to refuse.
const NON_PUBLIC_IPV4 = [
  /^0\./,
  /^10\./,
  /^127\./,
  /^169\.254\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^192\.168\./,
  /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
  /^(22[4-9]|2[3-5]\d)\./,
];
// As the URL parser writes IPv6 hosts (compressed, lowercase, in brackets): unspecified, loopback
// and IPv4-mapped (`::…`), unique local, link- and site-local, multicast, NAT64.
const NON_PUBLIC_IPV6 = /^\[(::|f[c-f]|ff|64:ff9b:)/;

// The URL parser writes every IPv4 literal (decimal, hex, short forms) as four decimal parts;
// a name such as `10.example.com` is not one.
const isIpv4 = (host: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host);

// `localhost` and its subdomains name this machine (RFC 6761), with or without a final dot.
const isLoopbackHost = (host: string) =>
  host === 'localhost' ||
  host.endsWith('.localhost') ||
  host === '[::1]' ||
  (isIpv4(host) && host.startsWith('127.'));

/**
 * Why a URL may not receive webhooks, or null when it may. Everywhere: http(s) only, no
 * credentials, bounded length, written as it is sent (no spaces or control characters, which
 * the URL parser would silently drop). In production, HTTPS to a public host; elsewhere, plain
 * http too, to loopback only (a receiver on the developer's machine).
 */
export function endpointUrlProblem(value: string, production: boolean): string | null {
  if (value.length > MAX_ENDPOINT_URL_LENGTH) return `at most ${MAX_ENDPOINT_URL_LENGTH} characters`;
  if (/[\s\p{Cc}]/u.test(value)) return 'no spaces or control characters';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'not an absolute URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'only https (or http on loopback) URLs';
  if (url.username !== '' || url.password !== '') return 'credentials in the URL are not allowed';
  if (url.hash !== '') return 'a fragment (#…) is not sent; leave it out';
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const loopback = isLoopbackHost(host);
  if (production) {
    if (url.protocol !== 'https:') return 'production endpoints must use https';
    const nonPublic = isIpv4(host)
      ? NON_PUBLIC_IPV4.some((range) => range.test(host))
      : NON_PUBLIC_IPV6.test(host);
    if (loopback || nonPublic) {
      return 'a loopback or private address is not allowed in production';
    }
    return null;
  }
  if (url.protocol === 'http:' && !loopback)
    return 'plain http is allowed to loopback only (127.0.0.1, localhost)';
  return null;
}

/** The event a ledger movement is reported as: what it did to the balance, and why. */
export function ledgerEventType(delta: number, kind: string): OutboundEventType {
  if (delta > 0) return 'credits.granted';
  if (kind === 'debit' || kind === 'usage') return 'credits.debited';
  if (kind === 'expiry') return 'credits.expired';
  return 'credits.revoked';
}
