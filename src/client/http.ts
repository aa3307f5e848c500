/**
 * One registration attempt over node's http/https (a private CA needs the `ca` option, which the
 * global fetch does not take without undici). The answer is classified for the retry loop:
 * success, worth retrying (connection errors, timeouts, 408, 429, 5xx), rejected (other 4xx,
 * redirects) or untrusted (TLS verification failed).
 */
import type { IncomingMessage, RequestOptions } from 'node:http';

export interface DeviceRecordJson {
  id: string;
  ip: string;
  name: string;
  userdata: string;
}

export type Outcome =
  | { kind: 'ok'; created: boolean; record: DeviceRecordJson }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'rejected'; status: number; code?: string; detail: string }
  | { kind: 'untrusted'; reason: string };

export interface AttemptSpec {
  url: URL;
  body: string;
  token?: string | undefined;
  /** PEM text of extra CA certificates (https only). */
  ca?: string | undefined;
  /** PEM client certificate and key for mutual TLS (https only). */
  cert?: string | undefined;
  key?: string | undefined;
  timeoutMs: number;
  userAgent: string;
  /** PUT a registration (the default) or POST a progress report (`ztp report`). */
  method?: 'PUT' | 'POST';
  /** What a 2xx must carry: a device record (default) or a report (its `type`). */
  expect?: 'record' | 'report';
}

const MAX_BODY = 1024 * 1024;

/** TLS verification failures that retrying will not fix. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

/** TLS alerts by which a server refuses our (missing or unknown) client certificate. */
const REFUSED_CLIENT_CERT =
  /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_UNKNOWN|TLSV1_ALERT_ACCESS_DENIED)$/;

/** "Retry-After: 5" or an HTTP date → milliseconds from `now`; undefined when absent or invalid. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return parseInt(v, 10) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function describeError(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const message = (typeof err.message === 'string' ? err.message : String(e))
    .split('\n')[0]!
    .trim();
  return typeof err.code === 'string' && !message.includes(err.code)
    ? `${err.code}: ${message}`
    : message;
}

/** Classifies a complete answer. Exported for tests. */
export function classify(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  text: string,
  now = Date.now(),
  expect: 'record' | 'report' = 'record',
): Outcome {
  if (expect === 'report' && status === 201) {
    try {
      const report = JSON.parse(text) as { type?: unknown } | null;
      if (report && typeof report.type === 'string')
        return { kind: 'ok', created: true, record: { id: '', ip: '', name: '', userdata: '' } };
    } catch {
      // fall through
    }
    return {
      kind: 'rejected',
      status,
      detail: `the server answered ${status} but not with a report; is --server a ztp server?`,
    };
  }
  if (expect === 'record' && (status === 200 || status === 201)) {
    try {
      const record = JSON.parse(text) as Partial<DeviceRecordJson> | null;
      if (record && typeof record.id === 'string' && typeof record.ip === 'string') {
        return {
          kind: 'ok',
          created: status === 201,
          record: {
            id: record.id,
            ip: record.ip,
            name: record.name ?? '',
            userdata: record.userdata ?? '',
          },
        };
      }
    } catch {
      // fall through
    }
    return {
      kind: 'rejected',
      status,
      detail: `the server answered ${status} but not with a device record; is --server a ztp server?`,
    };
  }
  let code: string | undefined;
  let detail: string | undefined;
  const type = String(headers['content-type'] ?? '');
  if (type.includes('json')) {
    try {
      const problem = JSON.parse(text) as { code?: unknown; detail?: unknown; title?: unknown };
      if (typeof problem.code === 'string') code = problem.code;
      if (typeof problem.detail === 'string') detail = problem.detail;
      else if (typeof problem.title === 'string') detail = problem.title;
    } catch {
      // not JSON after all
    }
  }
  detail ??= text.trim().slice(0, 300) || `HTTP ${status}`;
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfter = headers['retry-after'];
    const retryAfterMs = parseRetryAfter(
      Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      now,
    );
    const reason = `server answered ${status}${code ? ` ${code}` : ''}: ${detail}`;
    return retryAfterMs === undefined
      ? { kind: 'retry', reason }
      : { kind: 'retry', reason, retryAfterMs };
  }
  if (status >= 300 && status < 400) {
    const location = headers.location;
    return {
      kind: 'rejected',
      status,
      detail: `the server redirects to ${String(location ?? '(nowhere)')}; use that as --server`,
    };
  }
  return code === undefined
    ? { kind: 'rejected', status, detail }
    : { kind: 'rejected', status, code, detail };
}

/** Sends one PUT and classifies the result; never throws. */
export async function attempt(spec: AttemptSpec): Promise<Outcome> {
  const https = spec.url.protocol === 'https:';
  const { request } = https ? await import('node:https') : await import('node:http');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, application/problem+json',
    'content-length': String(Buffer.byteLength(spec.body)),
    'user-agent': spec.userAgent,
  };
  if (spec.token !== undefined) headers.authorization = `Bearer ${spec.token}`;
  const options: RequestOptions & { ca?: string; cert?: string; key?: string } = {
    method: spec.method ?? 'PUT',
    headers,
    agent: false,
  };
  if (https && spec.ca !== undefined) options.ca = spec.ca;
  if (https && spec.cert !== undefined && spec.key !== undefined) {
    options.cert = spec.cert;
    options.key = spec.key;
  }

  return new Promise<Outcome>((resolve) => {
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = request(spec.url, options, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      res.on('end', () => {
        finish(
          classify(
            res.statusCode ?? 0,
            res.headers,
            Buffer.concat(chunks).toString('utf8'),
            Date.now(),
            spec.expect,
          ),
        );
      });
      res.on('error', (e) => finish({ kind: 'retry', reason: describeError(e) }));
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${spec.timeoutMs / 1000}s`));
    }, spec.timeoutMs);
    req.on('error', (e: Error & { code?: string }) => {
      if (e.code !== undefined && REFUSED_CLIENT_CERT.test(e.code)) {
        finish({
          kind: 'rejected',
          status: 0,
          detail: `the server refused the TLS handshake (${e.code}); mutual TLS needs --cert-file and --key-file from a CA it trusts`,
        });
      } else if (e.code !== undefined && UNTRUSTED.has(e.code)) {
        finish({ kind: 'untrusted', reason: describeError(e) });
      } else if (e.code === 'CERT_NOT_YET_VALID') {
        // Devices without a real-time clock boot in 1970 until NTP syncs: wait for it.
        finish({
          kind: 'retry',
          reason: `${describeError(e)} (is the clock set? waiting for time sync)`,
        });
      } else {
        finish({ kind: 'retry', reason: describeError(e) });
      }
    });
    req.end(spec.body);
  });
}
