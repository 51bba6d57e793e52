import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { connectAddressProblem, isAddressLiteral } from '../../domain/outbound-events';

/** One address a name resolves to, as `dns.lookup` answers it. */
export type ResolvedAddress = LookupAddress;

/** Resolves a host name to every address it has; a test scripts one to stand in for DNS. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system's resolver (what `getaddrinfo` answers: /etc/hosts, then DNS), every address, in its order. */
export const systemResolver: HostResolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/** What a pinned POST came to: refused before connecting (and why), or the answer's status and first bytes. */
export type PinnedAnswer =
  { kind: 'refused'; reason: string } | { kind: 'answered'; status: number; bodyStart: Buffer };

export interface PinnedPost {
  url: URL;
  headers: Record<string, string>;
  body: string;
  /** Ends the whole attempt (resolution, connection, request, the answer's first bytes). */
  signal: AbortSignal;
  resolveHost: HostResolver;
  production: boolean;
  /** At most this much of the answer's body is read; the rest is never read. */
  maxBodyBytes: number;
}

const bare = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

const familyOf = (address: string) => (address.includes(':') ? 6 : 4);

/** The promise, or the signal's reason as soon as it aborts (a lookup cannot be cancelled). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The addresses this attempt may connect to: the IP literal itself, or every address the name
 * resolves to, each checked; one refused address refuses the attempt (the connection could use it).
 */
async function checkedAddresses(
  target: PinnedPost,
): Promise<{ addresses: ResolvedAddress[] } | { refused: string }> {
  const rules = { production: target.production, plainHttp: target.url.protocol === 'http:' };
  const host = bare(target.url.hostname);
  if (isAddressLiteral(target.url.hostname)) {
    const problem = connectAddressProblem(host, rules);
    return problem ? { refused: `${host} is ${problem}` } : { addresses: [] };
  }
  const resolved = await untilAborted(target.resolveHost(host), target.signal);
  if (resolved.length === 0) {
    throw Object.assign(new Error(`${host} resolves to no address`), { code: 'ENOTFOUND' });
  }
  for (const { address } of resolved) {
    const problem = connectAddressProblem(address, rules);
    if (problem) return { refused: `${host} resolves to ${address}, which is ${problem}` };
  }
  return { addresses: resolved.map(({ address }) => ({ address, family: familyOf(address) })) };
}

/**
 * A lookup that answers the addresses already checked, whatever it is asked: the connection goes
 * where the check allowed, and a second resolution (DNS rebinding) never happens.
 */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
    const usable = addresses.filter(({ family }) => wanted === 0 || family === wanted);
    if (usable.length === 0) {
      const error = Object.assign(new Error(`no IPv${wanted} address was checked`), { code: 'ENOTFOUND' });
      callback(error, '', 0);
      return;
    }
    if (options.all) {
      (callback as unknown as (error: null, addresses: ResolvedAddress[]) => void)(null, usable);
    } else {
      callback(null, usable[0]!.address, usable[0]!.family);
    }
  };
}

/** The first `maxBytes` of a body (or what came before it ended, failed or was cut off), then the stream is dropped. */
function bodyStartOf(response: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      response.destroy();
      resolve(Buffer.concat(chunks).subarray(0, maxBytes));
    };
    response.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size >= maxBytes) done();
    });
    response.once('end', done);
    response.once('error', done);
    response.once('close', done);
  });
}

/**
 * POSTs to a URL on a connection pinned to addresses checked at connect time: the name is
 * resolved once, every address it resolves to is checked (connectAddressProblem), and the socket
 * connects only to those. TLS still verifies the certificate for the name (SNI and the Host
 * header are the name), and a fresh connection is used each time, so nothing checked earlier is
 * reused. Redirects are answers, never followed. Network failures and the signal's abort throw.
 */
export async function pinnedPost(target: PinnedPost): Promise<PinnedAnswer> {
  const checked = await checkedAddresses(target);
  if ('refused' in checked) return { kind: 'refused', reason: checked.refused };
  const { url } = target;
  const options: RequestOptions = {
    method: 'POST',
    host: bare(url.hostname),
    port: url.port === '' ? undefined : Number(url.port),
    path: `${url.pathname}${url.search}`,
    headers: {
      ...target.headers,
      host: url.host,
      'content-length': String(Buffer.byteLength(target.body)),
    },
    signal: target.signal,
    // No pool: a kept-alive socket would skip this attempt's check.
    agent: false,
    ...(checked.addresses.length > 0 ? { lookup: pinnedLookup(checked.addresses) } : {}),
  };
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  try {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = send(options, resolve);
      request.once('error', reject);
      request.end(target.body);
    });
    const bodyStart = await bodyStartOf(response, target.maxBodyBytes);
    return { kind: 'answered', status: response.statusCode ?? 0, bodyStart };
  } catch (error) {
    // The request's own AbortError hides why: the signal's reason (a timeout) says it.
    if (target.signal.aborted) throw target.signal.reason;
    throw error;
  }
}
