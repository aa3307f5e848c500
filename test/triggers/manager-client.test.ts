import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { execUrl, ManagerClient } from '../../src/triggers/manager-client.js';
import { closedPort, FakeManager } from './fake-manager.js';
import { basicCall } from '../../src/triggers/manager-call.js';

describe('execUrl', () => {
  it('appends the exec path and encodes the ip, whatever characters it holds', () => {
    assert.equal(execUrl('http://m:9', '10.0.0.1'), 'http://m:9/api/exec?ip=10.0.0.1');
    assert.equal(execUrl('http://m/a', 'fe80::1'), 'http://m/a/api/exec?ip=fe80%3A%3A1');
    assert.equal(execUrl('http://m', '1&x=2#/'), 'http://m/api/exec?ip=1%26x%3D2%23%2F');
  });
});

describe('ManagerClient against a real HTTP server', () => {
  it('sends the Idempotency-Key and reports status, Retry-After and the start of the body', async () => {
    const m = await new FakeManager().start();
    const client = new ManagerClient({ managerUrl: m.url, timeoutMs: 2000, connections: 2 });
    try {
      m.mode = {
        kind: 'status',
        status: 503,
        headers: { 'retry-after': '7' },
        body: 'busy\r\nretry later',
      };
      const r = await client.send(basicCall({ ip: '10.0.0.1', key: 'k-1' }));
      assert.deepEqual(r, {
        kind: 'response',
        status: 503,
        retryAfter: '7',
        detail: 'busy retry later',
      });
      assert.equal(m.calls[0]!.key, 'k-1');
    } finally {
      await client.close();
      await m.stop();
    }
  });

  it('reuses keep-alive connections for consecutive calls', async () => {
    const sockets = new Set<unknown>();
    const server = createServer((req, res) => {
      sockets.add(req.socket);
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new ManagerClient({ managerUrl: url, timeoutMs: 2000, connections: 4 });
    try {
      for (let i = 0; i < 10; i++) {
        const r = await client.send(basicCall({ ip: `10.0.0.${i}`, key: `k${i}` }));
        assert.equal(r.kind === 'response' && r.status, 200);
      }
      assert.ok(sockets.size <= 2, `${sockets.size} connections for 10 calls`);
    } finally {
      await client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('reads at most a bounded part of a huge body and still answers', async () => {
    let written = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (written < 64 * 1024 * 1024 && res.write(chunk)) written += chunk.length;
        if (written < 64 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      res.on('error', () => undefined);
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new ManagerClient({ managerUrl: url, timeoutMs: 5000, connections: 1 });
    try {
      const r = await client.send(basicCall({ ip: '10.0.0.1', key: 'k' }));
      assert.equal(r.kind === 'response' && r.status, 200);
      assert.ok(written < 64 * 1024 * 1024, `the server could write only ${written} bytes`);
    } finally {
      await client.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('reports a refused connection as a retryable error', async () => {
    const client = new ManagerClient({
      managerUrl: `http://127.0.0.1:${await closedPort()}`,
      timeoutMs: 2000,
      connections: 1,
    });
    try {
      const r = await client.send(basicCall({ ip: '10.0.0.1', key: 'k' }));
      assert.equal(r.kind, 'error');
      assert.match(r.error, /ECONNREFUSED/);
    } finally {
      await client.close();
    }
  });

  it('gives up on a manager that never answers after the timeout', async () => {
    const m = await new FakeManager().start();
    m.mode = { kind: 'blackhole' };
    const client = new ManagerClient({ managerUrl: m.url, timeoutMs: 250, connections: 1 });
    try {
      const started = performance.now();
      const r = await client.send(basicCall({ ip: '10.0.0.1', key: 'k' }));
      const took = performance.now() - started;
      assert.deepEqual(r, { kind: 'timeout', error: 'timeout after 250 ms' });
      assert.ok(took >= 240 && took < 3000, `gave up after ${took} ms`);
    } finally {
      await client.close();
      await m.stop();
    }
  });

  it('an abort (shutdown) ends the call as an error, not a timeout', async () => {
    const m = await new FakeManager().start();
    m.mode = { kind: 'blackhole' };
    const client = new ManagerClient({ managerUrl: m.url, timeoutMs: 5000, connections: 1 });
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      const r = await client.send(basicCall({ ip: '10.0.0.1', key: 'k' }), ac.signal);
      assert.deepEqual(r, { kind: 'error', error: 'aborted: the server is shutting down' });
    } finally {
      await client.close();
      await m.stop();
    }
  });
});
