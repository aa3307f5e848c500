/**
 * A registration cannot steer the server's outgoing trigger request: the URL is built only from
 * the configured manager URL and a validated, normalised and percent-encoded ip. Hostile ip
 * values are refused at registration (nothing stored, nothing queued); the manager client
 * encodes whatever it is given, so even a value that got past validation stays one query value.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ManagerClient } from '../../src/triggers/manager-client.js';
import { startServe, type ServeProcess } from '../e2e/server-process.js';
import { eventually, json, tempDir, testApp } from '../helpers.js';
import { basicCall } from '../../src/triggers/manager-call.js';

interface Seen {
  target: string;
  host: string | undefined;
}

/** An HTTP server on 127.0.0.1 that records the raw request target and Host of every call. */
async function recorder(): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ target: req.url ?? '', host: req.headers.host });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const HOSTILE = [
  '1.1.1.1@evil.example',
  '1.1.1.1/../x',
  '1.1.1.1/../../admin?x=',
  '::1]:80',
  '[::1]:80/x',
  '1.1.1.1&ip=6.6.6.6',
  '1.1.1.1#frag',
  '1.1.1.1?x=1',
  '1.1.1.1\r\nHost: evil',
  '1.1.1.1 HTTP/1.1',
  'http://evil.example/',
  '//evil.example',
  'fe80::1%eth0',
  '01.1.1.1',
  '1.1.1.256',
  '',
];

describe('manager client', () => {
  let manager: Awaited<ReturnType<typeof recorder>>;
  before(async () => {
    manager = await recorder();
  });
  after(() => manager.close());

  it('sends any ip as exactly one encoded query value of /api/exec on the configured host', async () => {
    const client = new ManagerClient({ managerUrl: manager.url, timeoutMs: 2000, connections: 2 });
    try {
      for (const ip of [...HOSTILE, '10.0.0.1', '2001:db8::1']) {
        manager.seen.length = 0;
        const result = await client.send(basicCall({ ip, key: 'k' }));
        assert.equal(result.kind, 'response', `${JSON.stringify(ip)}: ${JSON.stringify(result)}`);
        assert.equal(manager.seen.length, 1);
        const { target, host } = manager.seen[0]!;
        assert.equal(host, new URL(manager.url).host);
        const url = new URL(target, 'http://placeholder');
        assert.equal(url.pathname, '/api/exec', target);
        assert.deepEqual([...url.searchParams.keys()], ['ip'], target);
        assert.equal(url.searchParams.get('ip'), ip, target);
        assert.equal(url.hash, '');
      }
    } finally {
      await client.close();
    }
  });

  it('keeps the base path of the manager URL', async () => {
    const client = new ManagerClient({
      managerUrl: `${manager.url}/tenant-a`,
      timeoutMs: 2000,
      connections: 1,
    });
    try {
      manager.seen.length = 0;
      await client.send(basicCall({ ip: '10.0.0.1/../../x', key: 'k' }));
      assert.equal(manager.seen[0]?.target, '/tenant-a/api/exec?ip=10.0.0.1%2F..%2F..%2Fx');
    } finally {
      await client.close();
    }
  });
});

describe('registration', () => {
  it('refuses every hostile ip with 400 invalid_ip, storing and queueing nothing', async () => {
    const t = await testApp({ service: { triggersEnabled: true } });
    try {
      for (const ip of HOSTILE) {
        const res = await t.app.inject({
          method: 'PUT',
          url: '/ztp/register/aa:bb:cc:dd:ee:01',
          payload: { ip },
        });
        assert.equal(res.statusCode, 400, JSON.stringify(ip));
        assert.equal(json(res).code, 'invalid_ip');
      }
      assert.equal(await t.store.countDevices(), 0);
      const counts: Record<string, number> = { ...(await t.store.countTriggers()) };
      assert.equal(
        Object.values(counts).reduce((sum, n) => sum + n, 0),
        0,
        'no trigger queued',
      );
    } finally {
      await t.close();
    }
  });
});

describe('end to end (real server, real manager)', () => {
  let manager: Awaited<ReturnType<typeof recorder>>;
  let elsewhere: Awaited<ReturnType<typeof recorder>>;
  let server: ServeProcess;
  const dir = tempDir('ztp-trigger-url-');

  before(async () => {
    manager = await recorder();
    elsewhere = await recorder();
    server = await startServe(['--database', `${dir.dir}/t.db`, '--manager-url', manager.url]);
  });
  after(async () => {
    await server.stop();
    await manager.close();
    await elsewhere.close();
    dir.cleanup();
  });

  it('calls only {manager}/api/exec?ip=<normalised ip>, whatever the registration says', async () => {
    const register = (id: string, body: unknown) =>
      fetch(`${server.url}/ztp/register/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', host: new URL(elsewhere.url).host },
        body: JSON.stringify(body),
      });
    for (const ip of HOSTILE)
      assert.equal((await register('aa:bb:cc:dd:ee:01', { ip })).status, 400);
    assert.equal((await register('aa:bb:cc:dd:ee:01', { ip: '::ffff:10.1.2.3' })).status, 201);
    assert.equal((await register('aa:bb:cc:dd:ee:02', { ip: 'FE80::0:1' })).status, 201);
    await eventually(() => manager.seen.length >= 2, 10_000, 'two trigger calls');
    assert.deepEqual(manager.seen.map((s) => s.target).sort(), [
      '/api/exec?ip=10.1.2.3',
      '/api/exec?ip=fe80%3A%3A1',
    ]);
    assert.ok(manager.seen.every((s) => s.host === new URL(manager.url).host));
    assert.equal(elsewhere.seen.length, 0);
  });
});
