import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { MemoryStore, StoreView } from '../storage/store-view.js';
import { Dispatcher, type DispatcherOptions } from '../../src/triggers/dispatcher.js';
import type { AttemptResult } from '../../src/triggers/retry-policy.js';
import { ConfigError, StorageUnavailableError } from '../../src/errors.js';
import { EventBus } from '../../src/events/bus.js';
import { json } from '../helpers.js';
import { callBuilder } from '../../src/triggers/manager-call.js';
import { clocked } from './clocked.js';
import { harness, quiet, retried } from './setup.js';

/** Counts the triggers the store hands out through claims from now on. */
function countClaims(store: StoreView): { triggers: number } {
  const count = { triggers: 0 };
  const { outbox } = store.stores;
  const claim = outbox.claim.bind(outbox);
  outbox.claim = async (...args) => {
    const got = await claim(...args);
    count.triggers += got.length;
    return got;
  };
  return count;
}

const A = 'aa:bb:cc:00:00:01';
const B = 'aa:bb:cc:00:00:02';

// The tests wait for what they check to happen: a call arriving at the manager, an outcome
// published by the dispatcher (in the outbox by then), a log line; never for time to pass.
describe('trigger delivery to a real manager', () => {
  // --trigger-hand-over off: the simple path, every trigger claimed by the loop.
  it('with hand-over off, every trigger goes through a claim and is delivered once', async () => {
    const h = await harness({ handOver: false });
    try {
      const claims = countClaims(h.t.store);
      const ids = ['aa:bb:cc:00:02:01', 'aa:bb:cc:00:02:02', 'aa:bb:cc:00:02:03'];
      for (const id of ids) assert.equal(await h.register(id, '10.0.0.1'), 201);
      await h.published({ state: 'delivered' }, ids.length);
      assert.equal(h.dispatcher.stats().delivered, ids.length);
      assert.equal(claims.triggers, ids.length);
      assert.equal(h.manager.calls.length, ids.length);
    } finally {
      await h.close();
    }
  });

  it('delivers once on 200, with the ip, an Idempotency-Key, and shows it as delivered', async () => {
    const h = await harness();
    try {
      assert.equal(await h.register(A, '10.0.0.1'), 201);
      const [call] = await h.manager.called(1);
      assert.equal(call!.path, '/api/exec');
      assert.equal(call!.ip, '10.0.0.1');
      assert.match(call!.key ?? '', /^[0-9a-f-]{36}$/);
      await h.published({ deviceId: A, state: 'delivered' });
      const tr = await h.trigger(A);
      assert.equal(tr?.state, 'delivered');
      assert.equal(tr.attempts, 1);
      assert.equal(tr.lastError, null);
      assert.ok(tr.deliveredAt !== null && Date.parse(tr.deliveredAt) > 0);
      assert.equal(tr.nextAttemptAt, null);
      assert.equal(h.dispatcher.stats().delivered, 1);
      assert.equal(h.events.at(-1)?.state, 'delivered');
      assert.equal(h.events.at(-1)?.deviceId, A);
      assert.equal(h.manager.calls.length, 1);
    } finally {
      await h.close();
    }
  });

  it('retries on 500 with the same Idempotency-Key until the manager recovers', async () => {
    const h = await harness();
    try {
      h.manager.mode = { kind: 'status', status: 500, body: 'db down' };
      await h.register(A, '10.0.0.2');
      const failing = await h.published(retried(A), 2);
      assert.equal(failing.lastError, 'HTTP 500: db down');
      assert.equal(failing.attempts, 2);
      assert.ok(failing.nextAttemptAt >= failing.updatedAt, 'the next attempt is scheduled');
      h.manager.mode = { kind: 'status', status: 200 };
      await h.published({ deviceId: A, state: 'delivered' });
      const keys = new Set(h.manager.keys());
      assert.equal(keys.size, 1, 'one key across all retries of one trigger');
      const tr = await h.trigger(A);
      assert.equal(tr?.state, 'delivered');
      assert.equal(tr.attempts, h.manager.calls.length);
      assert.equal(tr.lastError, null);
      const s = h.dispatcher.stats();
      assert.equal(s.delivered, 1);
      assert.equal(s.retried, h.manager.calls.length - 1);
      const warn = h.logs.find((l) => l.level === 'warn');
      assert.ok(warn);
      assert.deepEqual(
        [warn.obj.deviceId, warn.obj.attempt, warn.obj.error],
        [A, 1, 'HTTP 500: db down'],
      );
    } finally {
      await h.close();
    }
  });

  it('retries while the connection is refused and delivers once the manager is back', async () => {
    const h = await harness({ managerUp: false });
    try {
      await h.register(A, '10.0.0.3');
      const down = await h.published(retried(A), 2);
      assert.equal(down.attempts, 2);
      assert.match(down.lastError ?? '', /ECONNREFUSED/);
      assert.equal((await h.trigger(A))?.state, 'pending');
      await h.manager.start();
      await h.published({ deviceId: A, state: 'delivered' });
      assert.equal(h.manager.calls.length, 1);
      assert.equal(h.manager.calls[0]!.ip, '10.0.0.3');
    } finally {
      await h.close();
    }
  });

  it('does not retry a 400 and marks the trigger failed with the answer', async () => {
    const h = await harness();
    try {
      h.manager.mode = { kind: 'status', status: 400, body: 'unknown ip\n' };
      await h.register(A, '10.0.0.4');
      await h.published({ deviceId: A, state: 'failed' });
      const tr = await h.trigger(A);
      assert.equal(tr?.state, 'failed');
      assert.equal(tr.lastError, 'HTTP 400: unknown ip');
      assert.equal(tr.nextAttemptAt, null);
      assert.equal(h.dispatcher.stats().failed, 1);
      const err = h.logs.find((l) => l.level === 'error');
      assert.deepEqual(
        [err?.obj.deviceId, err?.obj.attempt, err?.obj.error],
        [A, 1, 'HTTP 400: unknown ip'],
      );
      assert.equal(h.events.at(-1)?.state, 'failed');
      assert.equal(h.manager.calls.length, 1);
    } finally {
      await h.close();
    }
  });

  it('a blackholed manager does not slow registrations and each call times out per the setting', async () => {
    const h = await harness({ timeoutMs: 1000 });
    try {
      h.manager.mode = { kind: 'blackhole' };
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        assert.equal(await h.register(`dev-${i}`, `10.0.1.${i}`), 201);
        times.push(performance.now() - started);
      }
      // The manager holds every call until the 1 s timeout; a registration that waited for it
      // would take that long. Typical times are a few ms (an fsync); the bound is generous for
      // a loaded test machine.
      assert.ok(Math.max(...times) < 500, `registration times: ${times.map(Math.round).join(',')}`);
      await h.manager.called(8);
      const tr = await h.published(retried('dev-0'));
      assert.equal(tr.lastError, 'timeout after 1000 ms');
      assert.equal((await h.trigger('dev-0'))?.state, 'pending');
      const firstCall = h.manager.calls.find((c) => c.ip === '10.0.1.0')!;
      // The manager sees the call a little after the client's clock starts (connecting, a
      // loaded machine: 45 ms once in CI), so the lower bound leaves room for that.
      const held = tr.updatedAt - firstCall.at;
      assert.ok(held >= 900 && held < 4000, `gave up after ${held} ms`);
    } finally {
      await h.close();
    }
  });

  // How often it probes while the manager is down is timed on the injected clock below.
  it('while the manager refuses connections the circuit opens, then the backlog is drained once it is back', async () => {
    const h = await harness({ managerUp: false, initialBackoffMs: 20, maxBackoffMs: 200 });
    try {
      for (let i = 0; i < 30; i++) assert.equal(await h.register(`dev-${i}`, `10.0.2.${i}`), 201);
      const warn = await h.logged('service manager unreachable');
      assert.match(String(warn.obj.error), /ECONNREFUSED/);
      assert.equal(h.dispatcher.stats().managerDown, true);

      await h.manager.start();
      await h.published({ state: 'delivered' }, 30);
      assert.equal(new Set(h.manager.calls.map((c) => c.ip)).size, 30);
      assert.equal(h.manager.calls.length, 30, 'each trigger sent once after the recovery');
      assert.equal(h.dispatcher.stats().managerDown, false);
      assert.ok(h.logs.some((l) => l.msg.startsWith('service manager reachable again')));
    } finally {
      await h.close();
    }
  });

  it('coalesces the pending trigger of a device: the manager gets the latest ip once', async () => {
    const h = await harness({ idle: true });
    try {
      await h.register(A, '10.0.0.1');
      await h.register(A, '10.0.0.2');
      await h.register(A, '10.0.0.3');
      await h.register(B, '10.0.9.9');
      const pending = json<{ triggers: { deviceId: string; ip: string }[] }>(
        await h.t.app.inject({ method: 'GET', url: '/ztp/mng/triggers?state=pending' }),
      ).triggers;
      assert.deepEqual(
        pending.map((p) => [p.deviceId, p.ip]),
        [
          [A, '10.0.0.3'],
          [B, '10.0.9.9'],
        ],
      );
      h.dispatcher.start();
      await h.published({ state: 'delivered' }, 2);
      // Nothing is left pending, so no later call can come.
      assert.equal(await h.t.store.countPendingTriggers(), 0);
      assert.deepEqual(h.manager.calls.map((c) => c.ip).sort(), ['10.0.0.3', '10.0.9.9']);
      assert.notEqual(h.manager.calls[0]!.key, h.manager.calls[1]!.key);
    } finally {
      await h.close();
    }
  });

  it('a registration during an in-flight call queues behind it: per-device order holds', async () => {
    const h = await harness({ timeoutMs: 300 });
    try {
      h.manager.mode = { kind: 'blackhole' };
      h.manager.onCall = () => (h.manager.mode = { kind: 'status', status: 200 });
      await h.register(A, '10.0.0.1');
      await h.manager.called(1);
      await h.register(A, '10.0.0.2'); // the first call is still held by the manager
      assert.equal((await h.trigger(A))?.ip, '10.0.0.2');
      await h.published({ deviceId: A, ip: '10.0.0.2', state: 'delivered' });
      const ips = h.manager.calls.map((c) => c.ip);
      assert.deepEqual(ips, ['10.0.0.1', '10.0.0.1', '10.0.0.2']);
      assert.equal((await h.trigger(A))?.state, 'delivered');
    } finally {
      await h.close();
    }
  });

  it("hands a registration's trigger straight to the dispatcher: delivered without a claim", async () => {
    // More slots than registrations: however slow the calls, a slot is free for each hand-over
    // (with every slot busy a hand-over waits, then claims: the test after the next).
    const h = await harness({ concurrency: 32 });
    try {
      const claims = countClaims(h.t.store);
      const ids = Array.from(
        { length: 20 },
        (_, i) => `aa:bb:cc:00:01:${String(i).padStart(2, '0')}`,
      );
      for (const id of ids) assert.equal(await h.register(id, '10.0.0.1'), 201);
      await h.published({ state: 'delivered' }, ids.length);
      assert.equal(h.dispatcher.stats().delivered, ids.length);
      assert.equal(claims.triggers, 0, 'no trigger went through a claim');
      assert.equal(h.manager.calls.length, ids.length);
      for (const id of ids.slice(0, 3)) {
        const tr = await h.trigger(id);
        assert.equal(tr?.state, 'delivered');
        assert.equal(tr.attempts, 1);
      }
    } finally {
      await h.close();
    }
  });

  it('a device registering again right after a hand-over gets its second call at once, not after a poll', async () => {
    // The loop polls once a minute: only the first call's completion can start the second.
    const h = await harness({ pollIntervalMs: 60_000 });
    try {
      await h.register(A, '10.0.0.1');
      await h.register(A, '10.0.0.2'); // queued behind the first (in flight or not yet recorded)
      const calls = await h.manager.called(2, 10_000);
      assert.deepEqual(
        calls.map((c) => c.ip),
        ['10.0.0.1', '10.0.0.2'],
      );
    } finally {
      await h.close();
    }
  });

  it('with every slot busy a handed-over trigger waits for one, before any claim; beyond that, claims', async () => {
    const h = await harness({ concurrency: 1, timeoutMs: 300 });
    const C = 'aa:bb:cc:00:00:03';
    try {
      const claims = countClaims(h.t.store);
      h.manager.mode = { kind: 'blackhole' }; // A's call holds the only slot until it times out
      h.manager.onCall = () => (h.manager.mode = { kind: 'status', status: 200 });
      await h.register(A, '10.0.0.1');
      await h.manager.called(1);
      await h.register(B, '10.0.0.2'); // handed over, waits for the slot
      await h.register(C, '10.0.0.3'); // one hand-over already waits (concurrency 1): claimed
      for (const id of [A, B, C]) await h.published({ deviceId: id, state: 'delivered' });
      assert.deepEqual(
        h.manager.calls.map((c) => c.ip),
        ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1'],
      );
      assert.equal((await h.trigger(A))?.attempts, 2, 'timed out once, then retried');
      assert.equal((await h.trigger(B))?.attempts, 1);
      assert.equal((await h.trigger(C))?.attempts, 1);
      assert.equal(claims.triggers, 2, "C and A's retry were claimed, B was not");
    } finally {
      await h.close();
    }
  });

  it('URL-encodes IPv6 addresses and keeps the manager URL path', async () => {
    const h = await harness({ managerUrl: (m) => `${m.url}/svc` });
    try {
      await h.register(A, '2001:DB8::1');
      const [call] = await h.manager.called(1);
      assert.equal(call!.url, '/svc/api/exec?ip=2001%3Adb8%3A%3A1');
      assert.equal(call!.ip, '2001:db8::1');
    } finally {
      await h.close();
    }
  });

  it('an admin edit does not trigger; a re-queue sends the current ip with a new key', async () => {
    const h = await harness();
    try {
      await h.register(A, '10.0.0.1');
      await h.published({ deviceId: A, state: 'delivered' });
      const edit = await h.t.app.inject({
        method: 'PUT',
        url: `/ztp/mng/${A}`,
        payload: { ip: '10.0.0.77', name: 'edited' },
      });
      assert.equal(edit.statusCode, 200);
      // The edit queued nothing: with no pending trigger in the outbox, no call can follow.
      assert.equal(await h.t.store.countPendingTriggers(), 0);
      assert.equal(h.manager.calls.length, 1);
      assert.equal((await h.trigger(A))?.state, 'delivered');

      const requeue = await h.t.app.inject({ method: 'POST', url: `/ztp/mng/${A}/trigger` });
      assert.equal(requeue.statusCode, 202);
      assert.equal(json(requeue).state, 'pending');
      assert.equal(json(requeue).ip, '10.0.0.77');
      const [first, second] = await h.manager.called(2);
      assert.equal(second!.ip, '10.0.0.77');
      assert.notEqual(second!.key, first!.key);
      await h.published({ deviceId: A, state: 'delivered' }, 2);
    } finally {
      await h.close();
    }
  });

  it('re-queues a failed trigger and delivers it', async () => {
    const h = await harness();
    try {
      h.manager.mode = { kind: 'status', status: 404 };
      await h.register(A, '10.0.0.1');
      await h.published({ deviceId: A, state: 'failed' });
      h.manager.mode = { kind: 'status', status: 200 };
      const res = await h.t.app.inject({ method: 'POST', url: `/ztp/mng/${A}/trigger` });
      assert.equal(res.statusCode, 202);
      await h.published({ deviceId: A, state: 'delivered' });
      const all = json<{ triggers: { state: string }[] }>(
        await h.t.app.inject({ method: 'GET', url: '/ztp/mng/triggers' }),
      ).triggers;
      assert.deepEqual(
        all.map((x) => x.state),
        ['failed', 'delivered'],
      );
    } finally {
      await h.close();
    }
  });

  it('stop(grace) waits for an in-flight call, then leaves it pending for the next start', async () => {
    const h = await harness({ timeoutMs: 5000, idle: false });
    try {
      h.manager.mode = { kind: 'blackhole' };
      await h.register(A, '10.0.0.1');
      await h.manager.called(1);
      const started = performance.now();
      await h.dispatcher.stop(100);
      const took = performance.now() - started;
      assert.ok(took >= 90 && took < 4000, `stop took ${took} ms`);
      const tr = await h.trigger(A);
      assert.ok(tr);
      assert.equal(tr.state, 'pending');
      assert.equal(tr.inFlight, false, 'the lease is released');
      assert.equal(tr.lastError, 'interrupted by shutdown');

      // The next dispatcher delivers it at once rather than after the lease.
      h.manager.mode = { kind: 'status', status: 200 };
      const next = new Dispatcher({
        outbox: h.t.store.stores.outbox,
        sender: h.client,
        events: h.t.events,
        logger: quiet,
        concurrency: 2,
        timeoutMs: 5000,
        leaseMs: 60_000,
        initialBackoffMs: 20,
        maxBackoffMs: 100,
        maxAgeMs: 60_000,
        pollIntervalMs: 25,
        retentionMs: 60_000,
      });
      next.start();
      await h.published({ deviceId: A, state: 'delivered' }, 1, 2000);
      await next.stop(0);
    } finally {
      await h.close();
    }
  });

  it('stop() also releases handed-over triggers still waiting for a slot', async () => {
    const h = await harness({ timeoutMs: 5000, concurrency: 1 });
    try {
      h.manager.mode = { kind: 'blackhole' };
      await h.register(A, '10.0.0.1');
      await h.manager.called(1);
      await h.register(B, '10.0.0.2'); // handed over, waiting behind A's call
      await h.dispatcher.stop(50);
      for (const id of [A, B]) {
        const tr = await h.trigger(id);
        assert.equal(tr?.state, 'pending', id);
        assert.equal(tr.inFlight, false, `${id}: the lease is released`);
        assert.equal(tr.lastError, 'interrupted by shutdown');
      }
      assert.equal(h.manager.calls.length, 1, 'B was never sent');
      assert.deepEqual(
        await h.t.store.claimTriggers(Date.now(), 10, 1000).then((ts) => ts.length),
        2,
      );
    } finally {
      await h.close();
    }
  });
});

describe('dispatcher on the in-memory store, on an injected clock', () => {
  it('delivers once on 2xx, publishes it, and sends nothing again over later polls', async (t) => {
    const c = clocked(t);
    c.dispatcher.start();
    await c.register(A, '10.0.0.1');
    await c.settle();
    assert.deepEqual(
      c.calls.map((x) => x.ip),
      ['10.0.0.1'],
    );
    const delivered = await c.store.latestTrigger(A);
    assert.equal(delivered?.state, 'delivered');
    assert.equal(delivered.attempts, 1);
    assert.equal(delivered.deliveredAt, c.now());
    assert.equal(c.calls[0]!.key, delivered.key);
    await c.advance(1000); // forty poll intervals
    assert.equal(c.calls.length, 1);
    assert.equal(c.dispatcher.stats().delivered, 1);
    assert.equal(c.dispatcher.stats().pending, 0);
    assert.deepEqual([c.events.at(-1)?.deviceId, c.events.at(-1)?.state], [A, 'delivered']);
  });

  it('a forwarded report left from a run with --report-forward fails at once without it, and holds nothing up', async (t) => {
    // The server's call builder without --report-forward.
    const c = clocked(t, { buildCall: callBuilder(undefined, false, false) });
    c.dispatcher.start();
    await c.register(A, '10.0.0.1');
    await c.settle();
    await c.store.forward(A, { type: 'bootstrap-error', message: 'x' }, c.now());
    await c.register(A, '10.0.0.2');
    await c.advance(100);
    assert.deepEqual(
      c.calls.map((x) => x.ip),
      ['10.0.0.1', '10.0.0.2'],
      'the registration calls only, in order',
    );
    const report = (await c.store.listTriggers(undefined, undefined, 10)).find(
      (x) => x.type === 'report',
    );
    assert.equal(report?.state, 'failed');
    assert.match(report.lastError ?? '', /--report-forward is off/);
    assert.equal(report.attempts, 1);
    assert.equal((await c.store.latestTrigger(A))?.ip, '10.0.0.2');
  });

  it('does not retry a 4xx: the trigger fails with the answer, logged once', async (t) => {
    const c = clocked(t);
    c.manager.answer = { kind: 'response', status: 400, detail: 'unknown ip' };
    c.dispatcher.start();
    await c.register(A, '10.0.0.4');
    await c.advance(1000);
    assert.equal(c.calls.length, 1);
    const failed = await c.store.latestTrigger(A);
    assert.equal(failed?.state, 'failed');
    assert.equal(failed.lastError, 'HTTP 400: unknown ip');
    assert.equal(c.dispatcher.stats().failed, 1);
    const errors = c.logs.filter((l) => l.level === 'error');
    assert.deepEqual(
      errors.map((l) => [l.obj.deviceId, l.obj.attempt, l.obj.error]),
      [[A, 1, 'HTTP 400: unknown ip']],
    );
    assert.equal(c.events.at(-1)?.state, 'failed');
  });

  it('a registration during an in-flight call queues behind it: per-device order holds', async (t) => {
    const c = clocked(t);
    let answer: (result: AttemptResult) => void = () => undefined;
    c.manager.answer = new Promise((resolve) => (answer = resolve));
    c.dispatcher.start();
    await c.register(A, '10.0.0.1');
    await c.settle();
    await c.register(A, '10.0.0.2'); // the first call is still held by the manager
    await c.advance(1000);
    assert.deepEqual(
      c.calls.map((x) => x.ip),
      ['10.0.0.1'],
      'the newer trigger waits for the older one',
    );
    c.manager.answer = { kind: 'response', status: 200 };
    answer({ kind: 'response', status: 200 });
    await c.settle();
    assert.deepEqual(
      c.calls.map((x) => x.ip),
      ['10.0.0.1', '10.0.0.2'],
    );
    assert.deepEqual(
      (await c.store.recentTriggers(A, 10)).map((x) => [x.ip, x.state]),
      [
        ['10.0.0.2', 'delivered'],
        ['10.0.0.1', 'delivered'],
      ],
    );
  });

  it('waits for Retry-After on a 429 before the retry', async (t) => {
    const c = clocked(t, { maxBackoffMs: 5000 });
    c.manager.answer = { kind: 'response', status: 429, retryAfter: '1' };
    c.dispatcher.start();
    await c.register(A, '10.0.0.5');
    await c.settle();
    assert.equal(c.calls.length, 1);
    c.manager.answer = { kind: 'response', status: 200 };
    await c.advance(990);
    assert.equal(c.calls.length, 1, 'not retried before the asked second');
    await c.advance(100);
    assert.equal(c.calls.length, 2);
    assert.equal(c.calls[1]!.at - c.calls[0]!.at, 1000);
    assert.equal(c.calls[1]!.key, c.calls[0]!.key, 'the same Idempotency-Key');
    assert.equal((await c.store.latestTrigger(A))?.state, 'delivered');
  });

  it('marks a trigger dead once it is older than the maximum age, and calls no more', async (t) => {
    const c = clocked(t, { maxAgeMs: 150 });
    c.manager.answer = { kind: 'response', status: 503 };
    c.dispatcher.start();
    await c.register(A, '10.0.0.1');
    await c.advance(200);
    const dead = await c.store.latestTrigger(A);
    assert.equal(dead?.state, 'dead');
    assert.equal(dead.lastError, 'HTTP 503 (undelivered after 150 ms)');
    const calls = c.calls.length;
    assert.ok(calls >= 2, `${calls} attempts in 150 ms`);
    await c.advance(1000);
    assert.equal(c.calls.length, calls, 'no call after death');
    assert.equal(c.dispatcher.stats().dead, 1);
    assert.equal(c.events.at(-1)?.state, 'dead');
  });

  it('prunes finished triggers past the retention but keeps the latest of each device', async (t) => {
    const c = clocked(t, { retentionMs: 1, pruneIntervalMs: 20 });
    c.dispatcher.start();
    await c.register(A, '10.0.0.1');
    await c.register(B, '10.0.0.2');
    await c.settle();
    await c.store.requeueTrigger(A, c.now());
    c.dispatcher.wake();
    await c.settle();
    assert.equal(c.dispatcher.stats().delivered, 3);
    await c.store.delete(B);
    await c.advance(100);
    assert.equal(c.dispatcher.stats().pruned, 2);
    const left = await c.store.listTriggers(undefined, undefined, 10);
    assert.deepEqual(
      left.map((x) => [x.deviceId, x.state]),
      [[A, 'delivered']],
    );
  });

  it('survives storage errors: logs them and delivers once the store answers again', async (t) => {
    const memory = new MemoryStore();
    let failures = 3;
    const outbox = new Proxy(memory.stores.outbox, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop === 'claim' && failures > 0) {
          return () => {
            failures--;
            return Promise.reject(new StorageUnavailableError('database unreachable'));
          };
        }
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const flaky = new StoreView({ ...memory.stores, outbox });
    const c = clocked(t, { store: flaky, pollIntervalMs: 20 });
    await memory.register(
      { id: A, ip: '10.0.0.1', name: '', userdata: '', source: '', at: c.now() },
      { enqueueTrigger: true, historyLimit: 0 },
    );
    c.dispatcher.start();
    await c.settle();
    assert.equal(c.calls.length, 0, 'the claim failed');
    await c.advance(60);
    assert.equal(failures, 0);
    assert.equal(
      c.logs.filter((l) => l.level === 'error' && l.msg.includes('storage error')).length,
      3,
    );
    assert.equal(c.calls.length, 1, 'delivered after the poll interval that followed the errors');
    assert.equal((await memory.latestTrigger(A))?.state, 'delivered');
  });

  it('refuses a lease that does not comfortably exceed the timeout', () => {
    assert.throws(
      () =>
        new Dispatcher({
          outbox: new MemoryStore().stores.outbox,
          sender: { send: () => Promise.resolve({ kind: 'error', error: 'x' }) },
          events: new EventBus(),
          logger: quiet,
          concurrency: 1,
          timeoutMs: 10_000,
          leaseMs: 15_000,
          initialBackoffMs: 1000,
          maxBackoffMs: 300_000,
          maxAgeMs: 86_400_000,
          pollIntervalMs: 1000,
          retentionMs: 1000,
        }),
      (e: unknown) => e instanceof ConfigError && e.message.includes('trigger-lease'),
    );
  });

  it('while the manager refuses connections it probes with one call at a time, then drains the backlog', async (t) => {
    const c = clocked(t, { initialBackoffMs: 20, maxBackoffMs: 200 });
    c.manager.answer = { kind: 'error', error: 'connect ECONNREFUSED 127.0.0.1:9' };
    for (let i = 0; i < 30; i++) await c.register(`dev-${i}`, `10.0.2.${i}`);
    c.dispatcher.start();
    await c.advance(600);
    assert.equal(c.dispatcher.stats().managerDown, true);
    const warn = c.logs.find((l) => l.msg.startsWith('service manager unreachable'));
    assert.match(String(warn?.obj.error), /ECONNREFUSED/);
    // Without the breaker each of the 30 triggers would have been tried every <=200 ms.
    assert.ok(c.calls.length < 30 + 10, `${c.calls.length} attempts in 600 ms`);
    const untried = (await c.store.listTriggers('pending', undefined, 100)).filter(
      (x) => x.attempts === 0,
    );
    assert.ok(untried.length > 0, 'most triggers wait unattempted');

    c.manager.answer = { kind: 'response', status: 200 };
    const down = c.calls.length;
    await c.advance(400); // the next probe is at most 200 ms away; the backlog follows at once
    assert.equal((await c.store.countTriggers()).delivered, 30);
    const after = c.calls.slice(down).map((x) => x.ip);
    assert.equal(after.length, 30, 'each trigger sent once after the recovery');
    assert.equal(new Set(after).size, 30);
    assert.equal(c.dispatcher.stats().managerDown, false);
    assert.ok(c.logs.some((l) => l.msg.startsWith('service manager reachable again')));
  });

  /** `devices` triggers pending before the dispatcher starts, with a manager answering 500. */
  async function backlog(t: TestContext, devices: number, extra: Partial<DispatcherOptions> = {}) {
    const c = clocked(t, {
      initialBackoffMs: 1000,
      maxBackoffMs: 8000,
      maxAgeMs: 86_400_000,
      pollIntervalMs: 2,
      ...extra,
    });
    c.manager.answer = { kind: 'response', status: 500, detail: 'internal error' };
    for (let i = 0; i < devices; i++) await c.register(`dev-${i}`, `10.1.0.${i}`);
    return c;
  }

  it('a manager answering 500 is probed once per pause, not hammered, and the backlog goes out promptly once it recovers', async (t) => {
    const c = await backlog(t, 100);
    c.dispatcher.start();
    await c.advance(30_000, 50);
    // Without the breaker each of the 100 triggers would be retried every 0.5-4 s (~900 calls).
    assert.ok(c.calls.length <= 8 + 10, `${c.calls.length} calls in 30 s of 500s`);
    assert.equal(c.dispatcher.stats().managerDown, true);
    const probes = c.calls.slice(8).map((x) => x.at); // the first 8 went out before the circuit opened
    assert.ok(probes.length >= 3, `${probes.length} probes in 30 s`);
    for (let i = 1; i < probes.length; i++) {
      const gap = probes[i]! - probes[i - 1]!;
      assert.ok(gap >= 1000, `probes ${gap} ms apart`);
    }

    c.manager.answer = { kind: 'response', status: 200 };
    const recoveredAt = c.now();
    const delivered = async () => (await c.store.countTriggers()).delivered === 100;
    while (!(await delivered()) && c.now() - recoveredAt < 60_000) await c.advance(100);
    const took = c.now() - recoveredAt;
    // The next probe (at most 8 s away) closes the circuit; the backlog follows at once.
    assert.ok(took <= 8_100, `all delivered ${took} ms after the recovery`);
    assert.equal(c.dispatcher.stats().managerDown, false);
  });

  it("honours a 429's Retry-After between probes, up to the max backoff", async (t) => {
    const c = await backlog(t, 50, { maxBackoffMs: 60_000 });
    c.manager.answer = { kind: 'response', status: 429, retryAfter: '20' };
    c.dispatcher.start();
    await c.advance(65_000, 100);
    assert.equal(c.dispatcher.stats().managerDown, true);
    const probes = c.calls.slice(8).map((x) => x.at);
    assert.ok(probes.length >= 2 && probes.length <= 4, `${probes.length} probes in 65 s`);
    for (let i = 1; i < probes.length; i++) {
      const gap = probes[i]! - probes[i - 1]!;
      assert.ok(gap >= 20_000, `probes ${gap} ms apart; Retry-After asked for 20 s`);
    }
  });
});
