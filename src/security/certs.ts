/** Client certificates (mutual TLS): who the verified peer is, and which device ids it may claim. */
import type { FastifyRequest } from 'fastify';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { canonicalMac } from '../devices/identity.js';

export interface ClientCert {
  /** The certificate chains to the configured client CA (checked by the TLS layer). */
  authorized: boolean;
  /** Subject common name(s). */
  commonNames: string[];
  /** subjectAltName entries, e.g. { type: 'DNS', value: 'aa:bb:cc:dd:ee:ff' }. */
  altNames: { type: string; value: string }[];
}

/**
 * Parses Node's `subjectaltname` text (`DNS:a, IP Address:1.2.3.4, URI:"x,y"`); values with
 * special characters are JSON-quoted by Node, so a comma inside one is not a separator.
 */
export function parseSubjectAltName(text: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (!text) return out;
  const entry = /([A-Za-z][A-Za-z ]*):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  let at = 0;
  while (at < text.length) {
    entry.lastIndex = at;
    const m = entry.exec(text);
    if (!m || m[0].length === 0) break;
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        break;
      }
    }
    out.push({ type: m[1]!, value });
    at = entry.lastIndex;
  }
  return out;
}

function isTlsSocket(socket: unknown): socket is TLSSocket {
  return (
    typeof socket === 'object' &&
    socket !== null &&
    typeof (socket as Partial<TLSSocket>).getPeerCertificate === 'function'
  );
}

/** The client certificate of the request's connection, or undefined (plain HTTP, or none sent). */
export function clientCert(request: Pick<FastifyRequest, 'raw'>): ClientCert | undefined {
  const socket: unknown = request.raw.socket;
  if (!isTlsSocket(socket)) return undefined;
  const cert: Partial<PeerCertificate> = socket.getPeerCertificate();
  if (!cert.raw) return undefined;
  const cn: unknown = cert.subject?.CN;
  const commonNames = Array.isArray(cn)
    ? cn.filter((v): v is string => typeof v === 'string')
    : typeof cn === 'string'
      ? [cn]
      : [];
  return {
    authorized: socket.authorized,
    commonNames,
    altNames: parseSubjectAltName(cert.subjectaltname),
  };
}

/** Names in a certificate that can be a device id: CN, and DNS/URI/email SANs, MACs canonical. */
export function certDeviceIds(cert: ClientCert): Set<string> {
  const names = [
    ...cert.commonNames,
    ...cert.altNames.filter((a) => ['DNS', 'URI', 'email'].includes(a.type)).map((a) => a.value),
  ];
  return new Set(names.map((n) => canonicalMac(n) ?? n));
}

export function certSubject(cert: ClientCert): string {
  return cert.commonNames[0] ?? cert.altNames[0]?.value ?? 'client-certificate';
}
