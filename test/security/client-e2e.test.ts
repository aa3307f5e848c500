/**
 * The device client (`ztp register`) against a secured real server: HTTPS with a private CA
 * (--ca-file), a device token (--token / ZTP_TOKEN), and mutual TLS with the certificate bound
 * to the device id (--cert-file/--key-file).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { hashToken } from '../../src/security/tokens.js';
import { startServe, type ServeProcess } from '../e2e/server-process.js';
import { httpsRequest, makePki, type Pki } from './pki.js';

const root = new URL('../../', import.meta.url).pathname;
const DEVICE_TOKEN = 'ztp_site-lab-device-token';
const MANAGER_TOKEN = 'ztp_svc-manager-token';

/** Runs `ztp register` with only the given environment (no inherited ZTP_*). */
function register(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['bin/ztp.mjs', 'register', '--wait', '0', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let pki: Pki;
before(() => {
  pki = makePki();
  writeFileSync(
    pki.path('tokens'),
    `# test tokens\ndevice:site-lab:${hashToken(DEVICE_TOKEN)}\nmanager:svc:${hashToken(MANAGER_TOKEN)}\n`,
  );
});
after(() => pki.cleanup());

async function lookup(server: ServeProcess, id: string): Promise<{ status: number; ip?: string }> {
  const res = await httpsRequest(`${server.url}/ztp/check/${id}`, {
    ca: pki.read('ca.pem'),
    headers: { authorization: `Bearer ${MANAGER_TOKEN}` },
  });
  return res.status === 200
    ? { status: 200, ip: (JSON.parse(res.body) as { ip: string }).ip }
    : { status: res.status };
}

describe('ztp register against HTTPS + tokens', () => {
  let server: ServeProcess;
  before(async () => {
    server = await startServe([
      ...['--database', pki.path('a.db'), '--tls-cert', pki.path('server.pem')],
      ...['--tls-key', pki.path('server.key'), '--tokens-file', pki.path('tokens')],
    ]);
  });
  after(() => server.stop());

  it('registers with --ca-file and --token', async () => {
    const r = await register([
      ...['--server', server.url, '--id', 'aa:bb:cc:dd:ee:31', '--ip', '10.3.0.1'],
      ...['--ca-file', pki.path('ca.pem'), '--token', DEVICE_TOKEN],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await lookup(server, 'aa:bb:cc:dd:ee:31'), { status: 200, ip: '10.3.0.1' });
  });

  it('registers with ZTP_CA_FILE and ZTP_TOKEN from the environment', async () => {
    const r = await register(['--id', 'AA-BB-CC-DD-EE-32', '--ip', '10.3.0.2'], {
      ZTP_SERVER: server.url,
      ZTP_CA_FILE: pki.path('ca.pem'),
      ZTP_TOKEN: DEVICE_TOKEN,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await lookup(server, 'aa:bb:cc:dd:ee:32'), { status: 200, ip: '10.3.0.2' });
  });

  it('is rejected (exit 4) without a token or with a wrong one, and nothing is stored', async () => {
    const base = ['--server', server.url, '--ca-file', pki.path('ca.pem'), '--ip', '10.3.0.3'];
    const none = await register([...base, '--id', 'aa:bb:cc:dd:ee:33']);
    assert.equal(none.code, 4, none.stderr);
    const wrong = await register([...base, '--id', 'aa:bb:cc:dd:ee:33', '--token', 'ztp_nope']);
    assert.equal(wrong.code, 4, wrong.stderr);
    const manager = await register([
      ...base,
      '--id',
      'aa:bb:cc:dd:ee:33',
      '--token',
      MANAGER_TOKEN,
    ]);
    assert.equal(manager.code, 4, 'a manager token may not register');
    assert.equal((await lookup(server, 'aa:bb:cc:dd:ee:33')).status, 404);
  });

  it('refuses to talk to the server without --ca-file (exit 6)', async () => {
    const r = await register([
      ...['--server', server.url, '--id', 'aa:bb:cc:dd:ee:34', '--ip', '10.3.0.4'],
      ...['--token', DEVICE_TOKEN],
    ]);
    assert.equal(r.code, 6, r.stderr);
    assert.ok(!r.stderr.includes(DEVICE_TOKEN), 'the token is never printed');
  });
});

describe('ztp register against mutual TLS with --bind-cert-to-id', () => {
  let server: ServeProcess;
  before(async () => {
    server = await startServe([
      ...['--database', pki.path('b.db'), '--tls-cert', pki.path('server.pem')],
      ...['--tls-key', pki.path('server.key'), '--tls-client-ca', pki.path('ca.pem')],
      ...['--bind-cert-to-id', '--tokens-file', pki.path('tokens')],
    ]);
  });
  after(() => server.stop());

  const withCert = (id: string) => [
    ...['--server', server.url, '--id', id, '--ip', '10.4.0.1', '--ca-file', pki.path('ca.pem')],
    ...['--cert-file', pki.path('device1.pem'), '--key-file', pki.path('device1.key')],
  ];

  it('registers the id of its certificate without a token', async () => {
    const r = await register(withCert('aa:bb:cc:dd:ee:01'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await lookup(server, 'aa:bb:cc:dd:ee:01'), { status: 200, ip: '10.4.0.1' });
  });

  it("cannot register another device's id, even with a device token", async () => {
    const r = await register([...withCert('aa:bb:cc:dd:ee:09'), '--token', DEVICE_TOKEN]);
    assert.equal(r.code, 4, r.stderr);
    assert.equal((await lookup(server, 'aa:bb:cc:dd:ee:09')).status, 404);
  });

  it('cannot register without a certificate', async () => {
    const r = await register([
      ...['--server', server.url, '--id', 'aa:bb:cc:dd:ee:01', '--ip', '10.6.6.6'],
      ...['--ca-file', pki.path('ca.pem'), '--token', DEVICE_TOKEN],
    ]);
    assert.equal(r.code, 4, r.stderr);
    assert.deepEqual(await lookup(server, 'aa:bb:cc:dd:ee:01'), { status: 200, ip: '10.4.0.1' });
  });
});
