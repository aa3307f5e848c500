import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { startServe } from '../e2e/server-process.js';
import { FakeManager } from './fake-manager.js';
import { waitFor } from './setup.js';

const root = new URL('../../', import.meta.url).pathname;
const timings = ['--trigger-timeout', '300ms', '--trigger-lease', '1s'];
const fast = ['--trigger-initial-backoff', '50ms', '--trigger-poll-interval', '100ms'];

async function register(url: string, id: string, ip: string): Promise<number> {
  const res = await fetch(`${url}/ztp/register/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ip }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('ztp serve with --manager-url (real process)', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('delivers a trigger that was pending at kill -9 after a restart', async () => {
    const manager = await new FakeManager().start();
    const db = join(dir, 'crash.db');
    try {
      // The manager holds every call: the triggers are in flight (leased) when the server dies.
      manager.mode = { kind: 'blackhole' };
      const first = await startServe([
        '--database',
        db,
        '--manager-url',
        manager.url,
        ...timings,
        ...fast,
      ]);
      assert.equal(await register(first.url, 'dev-a', '10.1.0.1'), 201);
      assert.equal(await register(first.url, 'dev-b', '10.1.0.2'), 201);
      await waitFor(() => manager.calls.length >= 2, 5000, 'both calls in flight');
      await first.kill9();
      const keysBefore = new Map(manager.calls.map((c) => [c.ip, c.key]));

      manager.mode = { kind: 'status', status: 200 };
      manager.calls = [];
      const second = await startServe([
        '--database',
        db,
        '--manager-url',
        manager.url,
        ...timings,
        ...fast,
      ]);
      try {
        await waitFor(() => manager.calls.length >= 2, 5000, 'redelivery after the lease expired');
        assert.deepEqual(manager.calls.map((c) => c.ip).sort(), ['10.1.0.1', '10.1.0.2']);
        for (const c of manager.calls)
          assert.equal(c.key, keysBefore.get(c.ip), 'same Idempotency-Key as before the crash');
        const detail = await waitFor(async () => {
          const res = await fetch(`${second.url}/ztp/mng/dev-a`);
          const body = (await res.json()) as { trigger: { state: string; attempts: number } };
          return body.trigger.state === 'delivered' ? body.trigger : undefined;
        });
        // one or more attempts before the crash (the last one cut by kill -9), one after
        assert.ok(detail.attempts >= 2, `${detail.attempts} attempts`);
      } finally {
        assert.equal(await second.stop(), 0);
      }
    } finally {
      await manager.stop();
    }
  });

  it('refuses to start when the lease does not comfortably exceed the timeout', () => {
    const r = spawnSync(
      process.execPath,
      [
        'bin/ztp.mjs',
        'serve',
        '--port',
        '0',
        '--database',
        join(dir, 'lease.db'),
        '--manager-url',
        'http://127.0.0.1:9',
        '--trigger-timeout',
        '10s',
        '--trigger-lease',
        '10s',
      ],
      { cwd: root, encoding: 'utf8', timeout: 10_000 },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--trigger-lease .* must be at least 2x --trigger-timeout/);
  });
});
