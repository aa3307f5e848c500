/**
 * `--trust-proxy`: behind a reverse proxy every request comes from the proxy's address. From the
 * configured peers only, `X-Forwarded-For` / `Forwarded: for=` give the source address (the
 * default ip, `lastSource`, the rate-limit key) and `X-Forwarded-Proto` / `-Host` (or
 * `Forwarded: proto= / host=`) the public URL that served scripts embed.
 *
 * Fastify's `trustProxy` (given `trusts` below) computes `request.ip` (the rightmost hop that is
 * not a trusted proxy), `request.protocol` and `request.host`, and ignores the headers from any
 * other peer. It does not check them: from a trusted peer, `X-Forwarded-For: garbage` would
 * become the source address. So an onRequest hook first checks the headers of a trusted peer
 * (400 `invalid_forwarded`) and rewrites them into the one form Fastify reads.
 */
import type { FastifyRequest } from 'fastify';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ConfigError, ZtpError } from '../errors.js';

export type TrustProxy = (address: string) => boolean;

function parseCidr(entry: string, list: BlockList, where: string): void {
  const [address = '', prefixText, ...rest] = entry.split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix =
    prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (family === undefined || rest.length > 0 || !(prefix >= 0 && prefix <= max))
    throw new ConfigError(
      `${where}: '${entry}' is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)`,
    );
  list.addSubnet(address, prefix, family);
}

const MAPPED_IPV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** Parses `CIDR[,CIDR...]` (a bare address is one host); ConfigError on any bad entry. */
export function parseTrustProxy(text: string, where = '--trust-proxy'): TrustProxy {
  const list = new BlockList();
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) throw new ConfigError(`${where}: give at least one CIDR`);
  for (const entry of entries) parseCidr(entry, list, where);
  return (address) => {
    const mapped = MAPPED_IPV4.exec(address);
    if (mapped) return list.check(mapped[1]!, 'ipv4');
    if (isIPv4(address)) return list.check(address, 'ipv4');
    return isIPv6(address) && list.check(address, 'ipv6');
  };
}

function invalid(detail: string): ZtpError {
  return new ZtpError('invalid_forwarded', `${detail} (sent by a --trust-proxy peer)`);
}

const shown = (v: string) => JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);

/**
 * An address as proxies write it: `192.0.2.7`, `2001:db8::1`, and with a port
 * `192.0.2.7:4711` or `[2001:db8::1]:4711`. Returns the address, or throws.
 */
function nodeAddress(raw: string, header: string): string {
  const v = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(v);
  const candidate = bracketed
    ? bracketed[1]!
    : /^\d+\.\d+\.\d+\.\d+:\d{1,5}$/.test(v)
      ? v.split(':')[0]!
      : v;
  if (isIPv4(candidate) || (isIPv6(candidate) && !candidate.includes('%'))) return candidate;
  throw invalid(`${header} holds ${shown(v)}, which is not an IP address`);
}

/** Host header forms: a DNS name or an IP literal, with an optional port. */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

function checkProto(value: string, header: string): string {
  const proto = value.trim().toLowerCase();
  if (proto !== 'http' && proto !== 'https')
    throw invalid(`${header} must be http or https, not ${shown(value.trim())}`);
  return proto;
}

function checkHost(value: string, header: string): string {
  const host = value.trim();
  if (!HOST.test(host)) throw invalid(`${header} holds ${shown(host)}, which is not a host[:port]`);
  return host;
}

interface Forwarded {
  for: string[];
  proto?: string;
  host?: string;
}

/** RFC 7239 elements (`for=a;proto=https, for="[2001:db8::1]:80"`), quoted strings respected. */
function parseForwarded(value: string): Forwarded {
  const elements: Record<string, string>[] = [];
  const pair = /\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*([;,]|$)/y;
  let element: Record<string, string> = {};
  let at = 0;
  while (at < value.length) {
    pair.lastIndex = at;
    const m = pair.exec(value);
    if (!m || m[0] === '')
      throw invalid(`Forwarded: ${shown(value)} is not a list of name=value pairs`);
    const key = m[1]!.toLowerCase();
    let v = m[2]!;
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    if (key in element) throw invalid(`Forwarded: an element gives ${key}= twice`);
    element[key] = v;
    if (m[3] !== ';') {
      elements.push(element);
      element = {};
    }
    at = pair.lastIndex;
  }
  if (elements.length === 0) throw invalid('Forwarded is empty');
  const fors = elements.map((e) => {
    if (e.for === undefined) throw invalid('Forwarded: every element must have for=');
    return nodeAddress(e.for, 'Forwarded for=');
  });
  const first = elements[0]!;
  return {
    for: fors,
    ...(first.proto === undefined ? {} : { proto: checkProto(first.proto, 'Forwarded proto=') }),
    ...(first.host === undefined ? {} : { host: checkHost(first.host, 'Forwarded host=') }),
  };
}

const list = (v: string | string[] | undefined): string[] | undefined =>
  v === undefined ? undefined : (Array.isArray(v) ? v.join(',') : v).split(',');

/**
 * Checks and rewrites the forwarding headers of a request from a trusted peer: the addresses
 * Fastify will read (from the right, up to the first hop that is not a trusted proxy; entries
 * further left are never used and not checked), the protocol and host (the first, client-facing
 * value). `Forwarded` is translated into the `X-Forwarded-*` form; a peer sending both kinds is
 * refused, because a proxy that sets one passes the other through from the client unchecked.
 */
export function normaliseForwardingHeaders(
  headers: Record<string, string | string[] | undefined>,
  trusts: TrustProxy,
): void {
  const xff = list(headers['x-forwarded-for']);
  const xfp = list(headers['x-forwarded-proto']);
  const xfh = list(headers['x-forwarded-host']);
  const fwd = headers.forwarded;
  let hops: string[] | undefined;
  let proto: string | undefined;
  let host: string | undefined;
  if (fwd !== undefined) {
    if (xff !== undefined || xfp !== undefined || xfh !== undefined)
      throw invalid('send either Forwarded or X-Forwarded-*, not both');
    const parsed = parseForwarded(Array.isArray(fwd) ? fwd.join(', ') : fwd);
    hops = parsed.for;
    proto = parsed.proto;
    host = parsed.host;
    delete headers.forwarded;
  } else {
    if (xff !== undefined) {
      hops = [];
      for (let i = xff.length - 1; i >= 0; i--) {
        const address = nodeAddress(xff[i]!, 'X-Forwarded-For');
        hops.unshift(address);
        if (!trusts(address)) break;
      }
    }
    if (xfp !== undefined) proto = checkProto(xfp[0]!, 'X-Forwarded-Proto');
    if (xfh !== undefined) host = checkHost(xfh[0]!, 'X-Forwarded-Host');
  }
  if (hops === undefined) delete headers['x-forwarded-for'];
  else headers['x-forwarded-for'] = hops.join(', ');
  if (proto === undefined) delete headers['x-forwarded-proto'];
  else headers['x-forwarded-proto'] = proto;
  if (host === undefined) delete headers['x-forwarded-host'];
  else headers['x-forwarded-host'] = host;
}

/** The root onRequest hook (callback style: it runs on every request). */
export function forwardingHeadersHook(trusts: TrustProxy) {
  return (request: FastifyRequest, _reply: unknown, done: (err?: Error) => void): void => {
    const peer = request.raw.socket.remoteAddress;
    if (peer === undefined || !trusts(peer)) {
      done(); // Fastify ignores the headers of this peer
      return;
    }
    try {
      normaliseForwardingHeaders(request.raw.headers, trusts);
    } catch (e) {
      done(e as Error);
      return;
    }
    done();
  };
}
