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
  // Before a grant with credits left expires, once per grant (credits/expiry-notices.ts).
  'credits.expiring',
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

// --- addresses a delivery may connect to ----------------------------------------------------

/** An IP address as its bytes (4 or 16), parsed from the text a resolver or the URL parser writes. */
type AddressBytes = number[];

/** Dotted-quad IPv4 only, no leading zeros (which some parsers read as octal): what resolvers write. */
function parseIpv4(text: string): AddressBytes | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => /^(0|[1-9]\d{0,2})$/.test(part))) return null;
  const bytes = parts.map(Number);
  return bytes.every((byte) => byte <= 255) ? bytes : null;
}

/** Any RFC 4291 spelling: compressed or not, any case, a dotted IPv4 tail, a zone (`%eth0`) dropped. */
function parseIpv6(text: string): AddressBytes | null {
  const address = text.toLowerCase().replace(/%[^%]*$/, '');
  const halves = address.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (half: string): number[] | null => {
    if (half === '') return [];
    const groups: number[] = [];
    const parts = half.split(':');
    for (const [index, part] of parts.entries()) {
      if (index === parts.length - 1 && part.includes('.')) {
        const ipv4 = parseIpv4(part);
        if (!ipv4) return null;
        groups.push((ipv4[0]! << 8) | ipv4[1]!, (ipv4[2]! << 8) | ipv4[3]!);
      } else if (/^[0-9a-f]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<number>(missing).fill(0), ...tail];
  return groups.flatMap((group) => [group >> 8, group & 0xff]);
}

interface AddressRange {
  cidr: string;
  /** What the range is, as an operator reads it in a refused attempt. */
  name: string;
  bytes: AddressBytes;
  bits: number;
}

const range = (cidr: string, name: string): AddressRange => {
  const [prefix, bits] = cidr.split('/') as [string, string];
  const bytes = prefix.includes(':') ? parseIpv6(prefix) : parseIpv4(prefix);
  if (!bytes) throw new Error(`bad range ${cidr}`);
  return { cidr, name, bytes, bits: Number(bits) };
};

const inRange = (address: AddressBytes, { bytes, bits }: AddressRange): boolean => {
  if (address.length !== bytes.length) return false;
  for (let bit = 0; bit < bits; bit += 8) {
    const mask = (0xff << (8 - Math.min(8, bits - bit))) & 0xff;
    if ((address[bit / 8]! & mask) !== (bytes[bit / 8]! & mask)) return false;
  }
  return true;
};

// IANA's special-purpose registries: none of these is a client's endpoint in production. Cloud
// metadata services live in link-local space; 255.255.255.255 is in the reserved 240/4.
const IPV4_LOOPBACK = range('127.0.0.0/8', 'loopback');
const SPECIAL_IPV4 = [
  range('0.0.0.0/8', '"this network"'),
  range('10.0.0.0/8', 'private-use'),
  range('100.64.0.0/10', 'shared (carrier NAT)'),
  IPV4_LOOPBACK,
  range('169.254.0.0/16', 'link-local'),
  range('172.16.0.0/12', 'private-use'),
  range('192.0.0.0/24', 'IETF protocol assignments'),
  range('192.0.2.0/24', 'documentation'),
  range('192.88.99.0/24', '6to4 relay anycast'),
  range('192.168.0.0/16', 'private-use'),
  range('198.18.0.0/15', 'benchmarking'),
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'),
];
const IPV6_LOOPBACK = range('::1/128', 'loopback');
// NAT64's well-known prefix carries an IPv4 address in its last 32 bits: judged as that address,
// so a worker behind DNS64 still reaches public IPv4 endpoints and never a private one.
const NAT64 = range('64:ff9b::/96', 'NAT64');
const GLOBAL_UNICAST = range('2000::/3', 'global unicast');
// Outside 2000::/3 everything is special (these name the common ones); inside, these are.
const SPECIAL_IPV6 = [
  range('::/128', 'unspecified'),
  IPV6_LOOPBACK,
  // Mapped and compatible spellings of IPv4 are never what a name resolves to: refused whatever
  // address they carry, so no spelling of a private address slips through.
  range('::ffff:0:0/96', 'IPv4-mapped'),
  range('::/96', 'IPv4-compatible'),
  range('64:ff9b:1::/48', 'local-use NAT64'),
  range('100::/64', 'discard-only'),
  range('fc00::/7', 'unique local'),
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'site-local'),
  range('ff00::/8', 'multicast'),
  range('2001:db8::/32', 'documentation'),
  range('2001::/23', 'IETF protocol assignments'),
  range('2002::/16', '6to4'),
  range('3fff::/20', 'documentation'),
];

/** Public, or the special-purpose range an address is in (as "name cidr"). */
type AddressClass = { kind: 'public' } | { kind: 'loopback' | 'special'; range: string };

function classifyBytes(bytes: AddressBytes): AddressClass {
  if (bytes.length === 4) {
    const special = SPECIAL_IPV4.find((candidate) => inRange(bytes, candidate));
    if (!special) return { kind: 'public' };
    const kind = special === IPV4_LOOPBACK ? 'loopback' : 'special';
    return { kind, range: `${special.name} ${special.cidr}` };
  }
  if (inRange(bytes, NAT64)) {
    const embedded = classifyBytes(bytes.slice(12));
    if (embedded.kind === 'public') return embedded;
    return { kind: 'special', range: `NAT64 of ${bytes.slice(12).join('.')}, ${embedded.range}` };
  }
  const special = SPECIAL_IPV6.find((candidate) => inRange(bytes, candidate));
  if (special) {
    const kind = special === IPV6_LOOPBACK ? 'loopback' : 'special';
    return { kind, range: `${special.name} ${special.cidr}` };
  }
  if (!inRange(bytes, GLOBAL_UNICAST)) return { kind: 'special', range: 'reserved, outside 2000::/3' };
  return { kind: 'public' };
}

function classifyAddress(address: string): AddressClass | null {
  const bytes = address.includes(':') ? parseIpv6(address) : parseIpv4(address);
  return bytes && classifyBytes(bytes);
}

/** Whether a host (as the URL parser writes it, IPv6 in brackets) is an IP address, not a name. */
export function isAddressLiteral(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return (bare.includes(':') ? parseIpv6(bare) : parseIpv4(bare)) !== null;
}

/**
 * Why a delivery may not connect to this address (what the endpoint's name resolved to, or its IP
 * literal), or null when it may. Checked on every address at connect time, so that the connection
 * goes only where the check allowed. Production: public addresses only (no private, loopback,
 * link-local, shared, multicast, documentation or reserved space, in any IPv4 or IPv6 spelling).
 * Elsewhere: loopback or public; plain http to loopback only.
 */
export function connectAddressProblem(
  address: string,
  rules: { production: boolean; plainHttp: boolean },
): string | null {
  const found = classifyAddress(address);
  if (!found) return 'not an IP address';
  if (rules.production) {
    return found.kind === 'public' ? null : `${found.range}, not allowed in production`;
  }
  if (rules.plainHttp && found.kind !== 'loopback') return 'not loopback: plain http goes to loopback only';
  if (found.kind === 'special') return `${found.range}, neither loopback nor public`;
  return null;
}

// `localhost` and its subdomains name this machine (RFC 6761), with or without a final dot.
const isLoopbackHost = (host: string) =>
  host === 'localhost' ||
  host.endsWith('.localhost') ||
  (isAddressLiteral(host) && classifyAddress(host.replace(/^\[(.*)\]$/, '$1'))?.kind === 'loopback');

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
    const literal = host.replace(/^\[(.*)\]$/, '$1');
    const nonPublic =
      isAddressLiteral(host) && connectAddressProblem(literal, { production, plainHttp: false }) !== null;
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
