import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { createTestDatabase } from '../pg-helpers.js';
import { startServe } from '../e2e/server-process.js';
import { FakeManager } from './fake-manager.js';

const root = new URL('../../', import.meta.url).pathname;
const timings = ['--trigger-timeout', '300ms', '--trigger-lease', '1s'];
const fast = ['--trigger-initial-backoff', '50ms', '--trigger-poll-interval', '100ms'];

/** A line the server logs (at debug) once it has recorded the device's trigger as delivered. */
const deliveredLine = (deviceId: string) => (line: string) => {
  if (!line.includes('"trigger delivered"')) return false;
  const entry = JSON.parse(line) as { msg?: string; deviceId?: string };
  return entry.msg === 'trigger delivered' && entry.deviceId === deviceId;
};

const pgdb = await createTestDatabase('crash');
after(() => pgdb?.drop());

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

  // The default trigger path and the simple one (no worker thread, no hand-over).
  for (const [name, paths] of [
    ['default', []],
    ['inline sender, hand-over off', ['--trigger-sender', 'inline', '--trigger-hand-over', 'off']],
  ] as const) {
    it(`delivers a trigger that was pending at kill -9 after a restart (${name})`, async () => {
      const manager = await new FakeManager().start();
      const db = join(dir, `crash-${paths.length}.db`);
      const serveArgs = [
        '--database',
        db,
        '--manager-url',
        manager.url,
        ...timings,
        ...fast,
        ...paths,
        '--log-level',
        'debug',
      ];
      try {
        // The manager holds every call: the triggers are in flight (leased) when the server dies.
        manager.mode = { kind: 'blackhole' };
        const first = await startServe(serveArgs);
        assert.equal(await register(first.url, 'dev-a', '10.1.0.1'), 201);
        assert.equal(await register(first.url, 'dev-b', '10.1.0.2'), 201);
        await manager.called(2);
        await first.kill9();
        const keysBefore = new Map(manager.calls.map((c) => [c.ip, c.key]));

        manager.mode = { kind: 'status', status: 200 };
        manager.calls = [];
        const second = await startServe(serveArgs);
        try {
          await Promise.all([manager.callFor('10.1.0.1'), manager.callFor('10.1.0.2')]);
          // Both ips, each with its pre-crash key. Now delivered right after the restart (no lease
          // wait), a call may be given up at the short --trigger-timeout while the server is still
          // warming up and sent again: at-least-once, with the same Idempotency-Key.
          assert.deepEqual([...new Set(manager.calls.map((c) => c.ip))].sort(), [
            '10.1.0.1',
            '10.1.0.2',
          ]);
          for (const c of manager.calls)
            assert.equal(c.key, keysBefore.get(c.ip), 'same Idempotency-Key as before the crash');
          await second.printed(deliveredLine('dev-a'), 'dev-a recorded as delivered');
          const res = await fetch(`${second.url}/ztp/mng/dev-a`);
          const detail = ((await res.json()) as { trigger: { state: string; attempts: number } })
            .trigger;
          assert.equal(detail.state, 'delivered');
          // one or more attempts before the crash (the last one cut by kill -9), one after
          assert.ok(detail.attempts >= 2, `${detail.attempts} attempts`);
        } finally {
          assert.equal(await second.stop(), 0);
        }
      } finally {
        await manager.stop();
      }
    });
  }

  /**
   * The default 60 s lease: a restart must not wait for the dead process's lease. On SQLite the
   * server owns the file, on PostgreSQL the restarted replica has the same --instance-id.
   */
  async function restartDeliversWithinSeconds(database: string, extra: string[]): Promise<void> {
    const manager = await new FakeManager().start();
    const args = ['--database', database, '--manager-url', manager.url, ...extra];
    try {
      manager.mode = { kind: 'blackhole' };
      const first = await startServe([...args, '--trigger-lease', '60s', ...fast]);
      assert.equal(await register(first.url, 'dev-lease', '10.2.0.1'), 201);
      await manager.called(1);
      await first.kill9();

      manager.mode = { kind: 'status', status: 200 };
      manager.calls = [];
      const second = await startServe([...args, '--trigger-lease', '60s', ...fast]);
      try {
        const restartedAt = Date.now();
        await manager.called(1);
        assert.ok(Date.now() - restartedAt < 5000);
        assert.equal(manager.calls[0]!.ip, '10.2.0.1');
      } finally {
        assert.equal(await second.stop(), 0);
      }
    } finally {
      await manager.stop();
    }
  }

  it('SQLite: a restart delivers a trigger leased at kill -9 within seconds, not after the 60 s lease', async () => {
    await restartDeliversWithinSeconds(join(dir, 'restart.db'), []);
  });

  it(
    'PostgreSQL: a restart with the same --instance-id delivers its dead lease within seconds',
    { skip: pgdb === undefined },
    async () => {
      await pgdb!.reset();
      await restartDeliversWithinSeconds(pgdb!.url, ['--instance-id', 'crash-a']);
    },
  );

  it('refuses a second server on the same SQLite file', async () => {
    const db = join(dir, 'owned.db');
    const first = await startServe(['--database', db]);
    try {
      const r = spawnSync(
        process.execPath,
        ['bin/ztp.mjs', 'serve', '--host', '127.0.0.1', '--port', '0', '--database', db],
        { cwd: root, encoding: 'utf8', timeout: 20_000 },
      );
      assert.notEqual(r.status, 0);
      assert.match(r.stderr + r.stdout, /in use by another ztp server process/);
    } finally {
      assert.equal(await first.stop(), 0);
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
