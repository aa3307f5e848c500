/** WAL checkpoints off the request path (src/storage/checkpoint.ts). */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteDatabase } from '../../src/db/sqlite/database.js';
import { openStores } from '../../src/stores.js';
import { SqliteStore, StoreView } from './store-view.js';
import { eventually, tempDir } from '../helpers.js';

const reg = (id: string) => ({
  id,
  ip: '10.0.0.1',
  name: 'x'.repeat(200),
  userdata: 'y'.repeat(2000),
  source: '',
  at: Date.now(),
});
const walSize = (path: string) => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);

describe('background checkpoints', () => {
  it('never checkpoint inside a commit, yet keep the WAL bounded and the data intact', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'cp.db');
    const store = new SqliteStore(path, {
      backgroundCheckpoint: { intervalMs: 10, truncateBytes: 256 * 1024 },
    });
    try {
      // The writing connection never checkpoints by itself.
      assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 0);
      for (let b = 0; b < 40; b++) {
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            store.register(reg(`d-${b}-${i}`), { enqueueTrigger: true, historyLimit: 20 }),
          ),
        );
      }
      // The worker copies the WAL into the database and has it restarted between batches, so the
      // file stays within a few MB of its 256 KB threshold (without restarts these writes make
      // a WAL of ~20 MB).
      await eventually(
        async () => {
          await store.register(reg('tick'), { enqueueTrigger: false, historyLimit: 0 });
          return store.walTruncations > 0;
        },
        10_000,
        'a WAL restart',
      );
      for (let b = 0; b < 120; b++) {
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            store.register(reg(`e-${b}-${i}`), { enqueueTrigger: true, historyLimit: 20 }),
          ),
        );
        assert.ok(walSize(path) < 10 * 1024 * 1024, `the WAL grew to ${walSize(path)} bytes`);
      }
      const stats = await store.checkpointer!.runNow();
      assert.ok(stats.runs > 0);
      const other = new Database(path, { readonly: true });
      const n = other.prepare<[], { n: number }>('SELECT count(*) AS n FROM devices').get()!.n;
      other.close();
      assert.equal(n, 1601);
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('are what openStores turns on for the server, and stop with the database', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'open.db');
    const opened = await openStores(path, { background: true });
    const db = opened.db;
    assert.ok(db instanceof SqliteDatabase);
    const store = new StoreView(opened);
    try {
      assert.equal(db.connection.pragma('wal_autocheckpoint', { simple: true }), 0);
      await store.register(reg('a'), { enqueueTrigger: false, historyLimit: 20 });
      assert.ok(db.checkpointer, 'no checkpoint worker after a commit');
    } finally {
      await store.close();
    }
    await assert.rejects(db.checkpointer.runNow(), /stopped/);
    // The last connection closed: SQLite checkpointed and removed the WAL, nothing is lost.
    const again = new SqliteStore(path);
    try {
      assert.equal((await again.get('a')).ip, '10.0.0.1');
    } finally {
      await again.close();
      cleanup();
    }
  });

  it('run only while there is something to checkpoint: an idle store has no worker', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'idle.db');
    const store = new SqliteStore(path, {
      backgroundCheckpoint: { intervalMs: 10, idleMs: 50, truncateBytes: 1 },
    });
    try {
      assert.equal(store.checkpointer, undefined);
      await store.register(reg('a'), { enqueueTrigger: false, historyLimit: 20 });
      assert.ok(store.checkpointer);
      await eventually(() => store.checkpointer === undefined, 5000, 'the idle worker to stop');
      // Everything was copied and the WAL truncated before it went.
      await eventually(() => walSize(path) === 0, 5000, 'an empty WAL');
      await store.register(reg('b'), { enqueueTrigger: false, historyLimit: 20 });
      assert.ok(store.checkpointer, 'the next commit did not start it again');
      assert.equal((await store.get('a')).ip, '10.0.0.1');
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('stay off for a plain store (automatic checkpoints, as SQLite ships)', async () => {
    const { dir, cleanup } = tempDir();
    const store = new SqliteStore(join(dir, 'plain.db'));
    try {
      assert.equal(store.checkpointer, undefined);
      assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    } finally {
      await store.close();
      cleanup();
    }
  });
});
