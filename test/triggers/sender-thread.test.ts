import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThreadedSender } from '../../src/triggers/sender-thread.js';
import { eventually } from '../helpers.js';
import { closedPort, FakeManager } from './fake-manager.js';
import { basicCall } from '../../src/triggers/manager-call.js';

describe('ThreadedSender: trigger calls on a worker thread', () => {
  it('makes the calls with their Idempotency-Keys and reports what the manager answered', async () => {
    const m = await new FakeManager().start();
    const sender = new ThreadedSender({ managerUrl: m.url, timeoutMs: 2000, connections: 4 });
    try {
      const ips = ['10.0.0.1', '2001:db8::1', '10.0.0.3'];
      const results = await Promise.all(
        ips.map((ip, i) => sender.send(basicCall({ ip, key: `k-${i}` }))),
      );
      assert.deepEqual(
        results.map((r) => r.kind === 'response' && r.status),
        [200, 200, 200],
      );
      assert.deepEqual(m.calls.map((c) => c.ip).sort(), [...ips].sort());
      assert.deepEqual(m.keys().sort(), ['k-0', 'k-1', 'k-2']);

      m.mode = { kind: 'status', status: 503, headers: { 'retry-after': '7' }, body: 'busy' };
      assert.deepEqual(await sender.send(basicCall({ ip: '10.0.0.4', key: 'k-3' })), {
        kind: 'response',
        status: 503,
        retryAfter: '7',
        detail: 'busy',
      });
      assert.equal(sender.threadsStarted, 1, 'every call went through one thread');
    } finally {
      await sender.close();
      await m.stop();
    }
  });

  it('reports a refused connection and a timeout as results, not as exceptions', async () => {
    const refused = new ThreadedSender({
      managerUrl: `http://127.0.0.1:${await closedPort()}`,
      timeoutMs: 2000,
      connections: 1,
    });
    const m = await new FakeManager().start();
    m.mode = { kind: 'blackhole' };
    const slow = new ThreadedSender({ managerUrl: m.url, timeoutMs: 150, connections: 1 });
    try {
      const r = await refused.send(basicCall({ ip: '10.0.0.1', key: 'k' }));
      assert.ok(r.kind === 'error', `an error result, got ${r.kind}`);
      assert.match(r.error, /ECONNREFUSED/);
      assert.deepEqual(await slow.send(basicCall({ ip: '10.0.0.1', key: 'k' })), {
        kind: 'timeout',
        error: 'timeout after 150 ms',
      });
    } finally {
      await refused.close();
      await slow.close();
      await m.stop();
    }
  });

  it('aborts the calls in flight when the signal fires (shutdown), and later calls at once', async () => {
    const m = await new FakeManager().start();
    m.mode = { kind: 'blackhole' };
    const sender = new ThreadedSender({ managerUrl: m.url, timeoutMs: 30_000, connections: 2 });
    const shutdown = new AbortController();
    try {
      const calls = [1, 2].map((i) =>
        sender.send(basicCall({ ip: `10.0.0.${i}`, key: `k${i}` }), shutdown.signal),
      );
      await m.called(2);
      shutdown.abort();
      for (const r of await Promise.all(calls)) {
        assert.deepEqual(r, { kind: 'error', error: 'aborted: the server is shutting down' });
      }
      assert.deepEqual(
        await sender.send(basicCall({ ip: '10.0.0.3', key: 'k3' }), shutdown.signal),
        {
          kind: 'error',
          error: 'aborted: the server is shutting down',
        },
      );
    } finally {
      await sender.close();
      await m.stop();
    }
  });

  it('stops its thread when idle and starts a new one for the next call', async () => {
    const m = await new FakeManager().start();
    const sender = new ThreadedSender({
      managerUrl: m.url,
      timeoutMs: 2000,
      connections: 1,
      idleMs: 50,
    });
    try {
      assert.equal(sender.running, false, 'no thread before the first call');
      await sender.send(basicCall({ ip: '10.0.0.1', key: 'a' }));
      assert.equal(sender.running, true);
      await eventually(() => !sender.running);
      const r = await sender.send(basicCall({ ip: '10.0.0.2', key: 'b' }));
      assert.equal(r.kind === 'response' && r.status, 200);
      assert.equal(sender.threadsStarted, 2);
      assert.deepEqual(m.keys(), ['a', 'b']);
    } finally {
      await sender.close();
      await m.stop();
    }
  });

  it('answers the calls a dying thread held with errors (retried), then uses a new thread', async () => {
    const m = await new FakeManager().start();
    m.mode = { kind: 'blackhole' };
    const sender = new ThreadedSender({ managerUrl: m.url, timeoutMs: 30_000, connections: 2 });
    try {
      const held = sender.send(basicCall({ ip: '10.0.0.1', key: 'k1' }));
      await m.called(1);
      await sender.terminateThreadForTest();
      const r = await held;
      assert.ok(r.kind === 'error', `an error result, got ${r.kind}`);
      assert.match(r.error, /trigger thread stopped/);

      m.mode = { kind: 'status', status: 200 };
      const again = await sender.send(basicCall({ ip: '10.0.0.1', key: 'k1' }));
      assert.equal(again.kind === 'response' && again.status, 200);
      assert.equal(sender.threadsStarted, 2);
    } finally {
      await sender.close();
      await m.stop();
    }
  });

  it('answers every call after close() with an error, without starting a thread', async () => {
    const sender = new ThreadedSender({
      managerUrl: 'http://127.0.0.1:9',
      timeoutMs: 2000,
      connections: 1,
    });
    await sender.close();
    assert.deepEqual(await sender.send(basicCall({ ip: '10.0.0.1', key: 'k' })), {
      kind: 'error',
      error: 'the trigger sender is closed',
    });
    assert.equal(sender.threadsStarted, 0);
  });
});
