import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StorageUnavailableError } from '../../src/errors.js';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { SqliteStore } from './store-view.js';
import { tempDir, tempSqliteStore } from '../helpers.js';
import { storeSuite } from './store-suite.js';

storeSuite('sqlite', async () => {
  const { store, cleanup } = tempSqliteStore();
  return { store, cleanup };
});

describe('SqliteStore specifics', () => {
  it('refuses to open a path it cannot create, as StorageUnavailableError', () => {
    assert.throws(() => new SqliteStore('/nonexistent-dir/x/ztp.db'), StorageUnavailableError);
  });

  it('an owner store is alone on its file and releases leases left by a dead owner on open', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'owned.db');
    const first = new SqliteStore(path, { owner: true });
    try {
      assert.throws(
        () => new SqliteStore(path, { owner: true }),
        /in use by another ztp server process/,
      );
      await first.register(
        { id: 'dev-1', ip: '10.0.0.1', name: '', userdata: '', source: '', at: 1 },
        { enqueueTrigger: true, historyLimit: 0 },
      );
      assert.equal((await first.claimTriggers(2, 10, 60_000)).length, 1);
    } finally {
      // Stands for the owner's death: the kernel drops the lock with the process.
      await first.close();
    }
    const second = new SqliteStore(path, { owner: true });
    try {
      assert.equal(second.releasedLeases, 1);
      const [again] = await second.claimTriggers(3, 10, 60_000);
      assert.equal(again?.deviceId, 'dev-1', 'claimable at once, not after the 60 s lease');
    } finally {
      await second.close();
      cleanup();
    }
  });

  it('keeps committed data across reopening the file', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'ztp.db');
    const a = new SqliteStore(path);
    await a.register(
      { id: 'dev-1', ip: '10.0.0.1', name: 'n', userdata: '', source: '', at: 1 },
      { enqueueTrigger: true, historyLimit: 5 },
    );
    await a.close();
    const b = new SqliteStore(path);
    assert.equal((await b.get('dev-1')).name, 'n');
    assert.equal((await b.countTriggers()).pending, 1);
    await b.close();
    cleanup();
  });

  it("upgrades a version-2 database: every device's triggers stay listed, newest first", async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'ztp.db');
    const old = new Database(path);
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
    for (const m of MIGRATIONS.filter((x) => x.version <= 2)) {
      old.exec(m.sqlite);
      old.prepare('INSERT INTO schema_version (version) VALUES (?)').run(m.version);
    }
    const device = old.prepare(
      `INSERT INTO devices (id, ip, first_seen, last_seen, updated_at, registrations)
       VALUES (?, '10.0.0.1', 1, 1, 1, 1)`,
    );
    const trigger = old.prepare(
      `INSERT INTO triggers (device_id, ip, key, state, created_at, next_attempt_at, updated_at)
       VALUES (?, ?, ?, ?, 1, 1, 1)`,
    );
    device.run('a');
    device.run('b');
    // Interleaved, as registrations of several devices are.
    for (const [id, ip, state] of [
      ['a', '10.0.0.1', 'delivered'],
      ['b', '10.0.1.1', 'delivered'],
      ['a', '10.0.0.2', 'failed'],
      ['a', '10.0.0.3', 'pending'],
    ] as const) {
      trigger.run(id, ip, `k-${ip}`, state);
    }
    old.close();

    const store = new SqliteStore(path);
    try {
      assert.deepEqual(
        (await store.recentTriggers('a', 10)).map((t) => [t.ip, t.state]),
        [
          ['10.0.0.3', 'pending'],
          ['10.0.0.2', 'failed'],
          ['10.0.0.1', 'delivered'],
        ],
      );
      assert.equal((await store.latestTrigger('b'))?.ip, '10.0.1.1');
      // New registrations continue each device's list.
      const r = await store.register(
        { id: 'b', ip: '10.0.1.2', name: '', userdata: '', source: '', at: 2 },
        { enqueueTrigger: true, historyLimit: 5 },
      );
      assert.deepEqual(
        (await store.recentTriggers('b', 10)).map((t) => t.id),
        [r.trigger!.id, 2],
      );
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('rejects operations after close with StorageUnavailableError', async () => {
    const { store, cleanup } = tempSqliteStore();
    await store.close();
    await assert.rejects(store.get('x'), StorageUnavailableError);
    await assert.rejects(store.listIds(undefined, 1), StorageUnavailableError);
    await cleanup();
  });
});
