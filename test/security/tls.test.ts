/**
 * Real TLS: certificates made by openssl in the test, the real app listening on 127.0.0.1, and
 * the real CLI for start-up and SIGHUP certificate rotation.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { AppOptions } from '../../src/app.js';
import type { ServeConfig } from '../../src/config.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { hashToken } from '../../src/security/tokens.js';
import { startServe } from '../e2e/server-process.js';
import { eventually, testApp, type TestApp } from '../helpers.js';
import { httpsRequest, makePki, type Pki } from './pki.js';

let pki: Pki;
before(() => {
  pki = makePki();
});
after(() => pki.cleanup());

/** The real app with the security built from these options, listening on 127.0.0.1:0. */
async function serve(
  options: Partial<ServeConfig>,
  app: Partial<AppOptions> = {},
): Promise<{ t: TestApp; url: string; close: () => Promise<void> }> {
  const security = setupSecurity({
    ...SECURITY_OFF,
    tlsCert: pki.path('server.pem'),
    tlsKey: pki.path('server.key'),
    ...options,
  });
  const t = await testApp({ app: { guards: security.guards, https: security.https, ...app } });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { t, url: `https://127.0.0.1:${port}`, close: () => t.close() };
}

const device = (name: string) => ({ cert: pki.read(`${name}.pem`), key: pki.read(`${name}.key`) });

describe('HTTPS', () => {
  it('serves the API over TLS with the configured certificate', async () => {
    const s = await serve({});
    try {
      const ca = pki.read('ca.pem');
      const reg = await httpsRequest(`${s.url}/ztp/register/aa-bb-cc-dd-ee-10`, {
        method: 'PUT',
        body: { ip: '10.0.0.10' },
        ca,
      });
      assert.equal(reg.status, 201);
      const check = await httpsRequest(`${s.url}/ztp/check/aa:bb:cc:dd:ee:10`, { ca });
      assert.equal(check.status, 200);
      assert.equal((JSON.parse(check.body) as { ip: string }).ip, '10.0.0.10');
      // A client that does not trust the CA refuses the server.
      await assert.rejects(
        httpsRequest(`${s.url}/healthz`, { ca: pki.read('rogue-ca.pem') }),
        /self-signed|unable to verify|certificate/i,
      );
    } finally {
      await s.close();
    }
  });
});

/** What the server sends on a raw TCP connection until it closes it (bounded by `timeoutMs`). */
async function rawUntilClosed(url: string, send: Buffer | string, timeoutMs: number) {
  const socket: Socket = connectTcp(Number(new URL(url).port), '127.0.0.1');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.on('error', () => undefined);
  if (send.length > 0) socket.write(send);
  const timer = setTimeout(
    () => socket.destroy(new Error('the server kept the connection')),
    timeoutMs,
  );
  try {
    await once(socket, 'close');
  } finally {
    clearTimeout(timer);
  }
  if (socket.errored?.message === 'the server kept the connection') throw socket.errored;
  return received;
}

describe('HTTPS listener', () => {
  it('closes a connection that does not start or finish the TLS handshake within the headers timeout', async () => {
    const s = await serve({}, { limits: { headersTimeout: 300 } });
    try {
      // Node's own handshake timeout is 120 s; 5 s here is far above the 300 ms configured.
      assert.equal(await rawUntilClosed(s.url, '', 5000), '');
      // The first bytes of a TLS record, then nothing more.
      assert.equal(await rawUntilClosed(s.url, Buffer.from([0x16, 0x03, 0x01]), 5000), '');
      // Still serving.
      const ok = await httpsRequest(`${s.url}/healthz`, { ca: pki.read('ca.pem') });
      assert.equal(ok.status, 200);
    } finally {
      await s.close();
    }
  });

  it('answers plain HTTP on the TLS port with a 400 that says to use https://', async () => {
    const s = await serve({});
    try {
      const plain = s.url.replace('https:', 'http:');
      const res = await fetch(`${plain}/healthz`);
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const problem = (await res.json()) as { code: string; detail: string };
      assert.equal(problem.code, 'https_required');
      assert.match(problem.detail, /https:\/\//);
      const raw = await rawUntilClosed(
        s.url,
        'PUT /ztp/register/x HTTP/1.1\r\nHost: x\r\n\r\n',
        5000,
      );
      assert.match(raw, /^HTTP\/1\.1 400 /);
      assert.equal(await s.t.store.countDevices(), 0);
      // TLS clients are not affected.
      const ok = await httpsRequest(`${s.url}/healthz`, { ca: pki.read('ca.pem') });
      assert.equal(ok.status, 200);
    } finally {
      await s.close();
    }
  });

  it('logs the https:// address it listens at', async () => {
    const lines: string[] = [];
    const s = await serve(
      {},
      { logger: { level: 'info', stream: { write: (l: string) => lines.push(l) } } },
    );
    try {
      const listening = lines
        .map((l) => (JSON.parse(l) as { msg: string }).msg)
        .filter((m) => m.startsWith('Server listening at'));
      assert.deepEqual(listening, [`Server listening at ${s.url}`]);
      assert.equal(s.t.app.listeningOrigin, s.url);
    } finally {
      await s.close();
    }
  });
});

describe('mutual TLS: --require-client-cert register', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    s = await serve({ tlsClientCa: pki.path('ca.pem'), requireClientCert: 'register' });
  });
  after(() => s.close());

  it('refuses a registration without a client certificate, and stores nothing', async () => {
    const ca = pki.read('ca.pem');
    const res = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:20`, {
      method: 'PUT',
      body: { ip: '10.0.0.20' },
      ca,
    });
    assert.equal(res.status, 403);
    assert.match(res.headers['content-type'] as string, /application\/problem\+json/);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'forbidden');
    assert.equal(await s.t.store.countDevices(), 0);
  });

  it('refuses a certificate from another CA', async () => {
    const res = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:01`, {
      method: 'PUT',
      body: { ip: '10.0.0.1' },
      ca: pki.read('ca.pem'),
      ...device('rogue'),
    });
    assert.equal(res.status, 403);
    assert.equal(await s.t.store.countDevices(), 0);
  });

  it('accepts a registration with a certificate from the CA; retrieval needs none', async () => {
    const ca = pki.read('ca.pem');
    const reg = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:01`, {
      method: 'PUT',
      body: { ip: '10.0.0.1' },
      ca,
      ...device('device1'),
    });
    assert.equal(reg.status, 201);
    const check = await httpsRequest(`${s.url}/ztp/check/aa:bb:cc:dd:ee:01`, { ca });
    assert.equal(check.status, 200);
    const list = await httpsRequest(`${s.url}/ztp/mng/list`, { ca });
    assert.deepEqual(JSON.parse(list.body), { hosts: ['aa:bb:cc:dd:ee:01'] });
    assert.equal((await httpsRequest(`${s.url}/healthz`, { ca })).status, 200);
  });
});

describe('mutual TLS: --require-client-cert all', () => {
  it('refuses retrieval and management without a certificate but still serves the probes and docs', async () => {
    const s = await serve({ tlsClientCa: pki.path('ca.pem'), requireClientCert: 'all' });
    try {
      const ca = pki.read('ca.pem');
      for (const path of ['/ztp/check/aa:bb:cc:dd:ee:01', '/ztp/mng/list']) {
        assert.equal((await httpsRequest(`${s.url}${path}`, { ca })).status, 403, path);
        assert.notEqual(
          (await httpsRequest(`${s.url}${path}`, { ca, ...device('device1') })).status,
          403,
          path,
        );
      }
      for (const path of ['/healthz', '/readyz', '/openapi.json', '/docs/'])
        assert.equal((await httpsRequest(`${s.url}${path}`, { ca })).status, 200, path);
    } finally {
      await s.close();
    }
  });
});

describe('--bind-cert-to-id', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    s = await serve({ tlsClientCa: pki.path('ca.pem'), bindCertToId: true });
  });
  after(() => s.close());

  it('lets a device register its own id, in any MAC notation', async () => {
    const res = await httpsRequest(`${s.url}/ztp/register/AA-BB-CC-DD-EE-01`, {
      method: 'PUT',
      body: { ip: '10.0.0.1' },
      ca: pki.read('ca.pem'),
      ...device('device1'),
    });
    assert.equal(res.status, 201);
  });

  it("rejects a device registering another device's id, and stores nothing", async () => {
    const res = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:02`, {
      method: 'PUT',
      body: { ip: '10.6.6.6' },
      ca: pki.read('ca.pem'),
      ...device('device1'),
    });
    assert.equal(res.status, 403);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'forbidden');
    const check = await httpsRequest(`${s.url}/ztp/check/aa:bb:cc:dd:ee:02`, {
      ca: pki.read('ca.pem'),
    });
    assert.equal(check.status, 404);
  });

  it('matches a subjectAltName as well as the CN', async () => {
    const ca = pki.read('ca.pem');
    const own = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:02`, {
      method: 'PUT',
      body: { ip: '10.0.0.2' },
      ca,
      ...device('device2'),
    });
    assert.equal(own.status, 201);
    // device2's CN is "device two", which is a valid id but not its own: refused
    const other = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:01`, {
      method: 'PUT',
      body: { ip: '10.6.6.6' },
      ca,
      ...device('device2'),
    });
    assert.equal(other.status, 403);
  });

  it('refuses a registration without a certificate (binding implies one)', async () => {
    const res = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:03`, {
      method: 'PUT',
      ca: pki.read('ca.pem'),
    });
    assert.equal(res.status, 403);
  });
});

describe('tokens with mutual TLS', () => {
  it('a device certificate authenticates registration; retrieval still needs a manager token', async () => {
    const manager = 'ztp_manager-token-for-mtls-test';
    const s = await serve({
      tlsClientCa: pki.path('ca.pem'),
      tokens: `manager:svc:${hashToken(manager)}`,
    });
    try {
      const ca = pki.read('ca.pem');
      const reg = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:01`, {
        method: 'PUT',
        ca,
        ...device('device1'),
      });
      assert.equal(reg.status, 201);
      const noCert = await httpsRequest(`${s.url}/ztp/register/aa:bb:cc:dd:ee:01`, {
        method: 'PUT',
        ca,
      });
      assert.equal(noCert.status, 401);
      const certOnly = await httpsRequest(`${s.url}/ztp/check/aa:bb:cc:dd:ee:01`, {
        ca,
        ...device('device1'),
      });
      assert.equal(certOnly.status, 401);
      const withToken = await httpsRequest(`${s.url}/ztp/check/aa:bb:cc:dd:ee:01`, {
        ca,
        headers: { authorization: `Bearer ${manager}` },
      });
      assert.equal(withToken.status, 200);
    } finally {
      await s.close();
    }
  });
});

/** Serial number of the certificate the server presents on a new connection. */
function serverSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('ztp serve with TLS (real process)', () => {
  it('serves https, and re-reads the certificate on SIGHUP without dropping the listener', async () => {
    const cert = pki.path('live.pem');
    const key = pki.path('live.key');
    copyFileSync(pki.path('server.pem'), cert);
    copyFileSync(pki.path('server.key'), key);
    const server = await startServe([
      ...['--database', pki.path('serve.db'), '--tls-cert', cert, '--tls-key', key],
    ]);
    try {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(
        server.lines.some((l) => l.includes('Server listening at https://')),
        server.lines.join('\n'),
      );
      assert.ok(!server.lines.some((l) => l.includes('Server listening at http://')));
      const port = Number(new URL(server.url).port);
      const ca = pki.read('ca.pem');
      const first = await serverSerial(port, ca);

      // Rotate: a new certificate for the same names, then SIGHUP.
      pki.issue(
        'server2',
        '/CN=localhost',
        'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth',
      );
      copyFileSync(pki.path('server2.pem'), cert);
      copyFileSync(pki.path('server2.key'), key);
      server.proc.kill('SIGHUP');
      await eventually(() => server.lines.some((l) => l.includes('TLS certificate reloaded')));
      const second = await serverSerial(port, ca);
      assert.notEqual(second, first);

      // A broken file on the next SIGHUP keeps the current certificate and the server up.
      writeFileSync(cert, 'not a certificate');
      server.proc.kill('SIGHUP');
      await eventually(() => server.lines.some((l) => l.includes('TLS reload failed')));
      assert.equal(await serverSerial(port, ca), second);
      assert.equal((await httpsRequest(`${server.url}/healthz`, { ca })).status, 200);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it('refuses to start with a key that does not match, or mutual TLS without TLS', async () => {
    const { spawnSync } = await import('node:child_process');
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['bin/ztp.mjs', 'serve', '--port', '0', ...args], {
        cwd: new URL('../../', import.meta.url).pathname,
        encoding: 'utf8',
        timeout: 10_000,
      });
    const mismatch = run([
      ...['--database', pki.path('x.db'), '--tls-cert', pki.path('server.pem')],
      ...['--tls-key', pki.path('device1.key')],
    ]);
    assert.equal(mismatch.status, 2, mismatch.stderr);
    assert.match(mismatch.stderr, /not usable/);
    const noTls = run(['--tls-client-ca', pki.path('ca.pem')]);
    assert.equal(noTls.status, 2);
    assert.match(noTls.stderr, /--tls-client-ca needs --tls-cert/);
  });
});
