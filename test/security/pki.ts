/**
 * A throwaway PKI made with the openssl CLI (EC P-256 keys, so it takes well under a second):
 * a CA, a server certificate for 127.0.0.1/localhost, device client certificates, and a second,
 * untrusted CA with a client certificate of its own.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';

export interface Pki {
  dir: string;
  /** Absolute path of a file in the PKI directory. */
  path(name: string): string;
  read(name: string): Buffer;
  /** Issues `<name>.pem`/`<name>.key` signed by `ca` (default `ca`). */
  issue(name: string, subject: string, ext: string, ca?: string): void;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makePki(): Pki {
  const { dir, cleanup } = tempDir('ztp-pki-');
  const path = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  let serial = 1000;

  const makeCa = (name: string, cn: string) =>
    openssl([
      ...['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`],
      ...['-days', '2', '-subj', `/CN=${cn}`],
    ]);
  const issue = (name: string, subject: string, ext: string, ca = 'ca') => {
    writeFileSync(path(`${name}.ext`), `${ext}\n`);
    openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl([
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`],
      ...['-set_serial', String(serial++), '-out', `${name}.pem`, '-days', '2'],
      ...['-extfile', `${name}.ext`],
    ]);
  };

  makeCa('ca', 'ztp test CA');
  makeCa('rogue-ca', 'someone else');
  issue(
    'server',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth',
  );
  issue('device1', '/CN=aa:bb:cc:dd:ee:01', 'extendedKeyUsage=clientAuth');
  // A device whose id is only in a SAN (CN is something else).
  issue(
    'device2',
    '/CN=device two',
    'subjectAltName=DNS:AABB.CCDD.EE02\nextendedKeyUsage=clientAuth',
  );
  issue('rogue', '/CN=aa:bb:cc:dd:ee:01', 'extendedKeyUsage=clientAuth', 'rogue-ca');

  return { dir, path, read: (name) => readFileSync(path(name)), issue, cleanup };
}

export interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request on a fresh connection (no agent), trusting `ca`, optionally with a client certificate. */
export async function httpsRequest(
  url: string,
  opts: {
    method?: string;
    body?: unknown;
    headers?: Record<string, string>;
    ca: Buffer;
    cert?: Buffer;
    key?: Buffer;
  },
): Promise<TlsResponse> {
  const { request } = await import('node:https');
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'GET',
        agent: false,
        ca: opts.ca,
        ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
        headers: {
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
