/**
 * The group commit keeps every guarantee of a commit per request: an answer is never a 2xx
 * before the commit that holds the write, a failed commit answers every request of its batch
 * with a 503 problem, one failing write does not fail the others of its batch, and a crash
 * loses only requests that were never answered.
 */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startServe } from '../e2e/server-process.js';
import { json, tempDir, tempSqliteStore, testApp, type TestApp } from '../helpers.js';
import { Signal } from '../signal.js';
import { SqliteStore } from './store-view.js';

const reg = (id: string, ip = '10.0.0.1') => ({
  id,
  ip,
  name: '',
  userdata: '',
  source: '',
  at: Date.now(),
});
const opts = { enqueueTrigger: true, historyLimit: 20 };

for (const fsyncOffLoop of [false, true]) {
  describe(`group commit over HTTP (fsync ${fsyncOffLoop ? 'on the thread pool' : 'inside COMMIT'})`, () => {
    let t: TestApp;
    let store: SqliteStore;
    let path: string;
    let cleanup: () => void;
    /** An independent connection: it only ever sees committed data. */
    let other: Database.Database;

    before(async () => {
      const dir = tempDir();
      cleanup = dir.cleanup;
      path = join(dir.dir, 'ztp.db');
      store = new SqliteStore(path, { fsyncOffLoop });
      t = await testApp({ store, service: { triggersEnabled: true }, closeStore: true });
      other = new Database(path, { readonly: true });
    });
    after(async () => {
      other.close();
      await t.close();
      cleanup();
    });

    const seen = (id: string) =>
      other.prepare<[string], { ip: string }>('SELECT ip FROM devices WHERE id = ?').get(id);
    const put = (id: string, ip: string) =>
      t.app.inject({ method: 'PUT', url: `/ztp/register/${id}`, payload: { ip } });

    it('answers 2xx only once the device and its trigger are visible to another connection', async () => {
      const ids = Array.from({ length: 40 }, (_, i) => `visible-${i}`);
      const checks = ids.map((id, i) =>
        put(id, `10.1.0.${i}`).then((res) => {
          // Checked at the moment the answer arrives, before anything else runs.
          assert.equal(res.statusCode, 201, res.body);
          assert.equal(seen(id)?.ip, `10.1.0.${i}`, `${id} answered before its commit`);
          const trigger = other
            .prepare<[string], { n: number }>(
              'SELECT count(*) AS n FROM triggers WHERE device_id = ?',
            )
            .get(id);
          assert.equal(trigger?.n, 1, `${id}: its trigger is not in the same commit`);
        }),
      );
      await Promise.all(checks);
    });

    it('runs in WAL mode with an fsync per commit (FULL, or NORMAL plus its own fsync)', () => {
      assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(store.db.pragma('synchronous', { simple: true }), fsyncOffLoop ? 1 : 2);
    });

    it('answers every request of a batch whose COMMIT fails with a 503 problem and stores none', async () => {
      // A deferred foreign-key violation is only detected by COMMIT: every statement of the batch
      // succeeds, then the commit itself fails, as a full disk or an I/O error at commit would.
      store.db.pragma('foreign_keys = ON');
      store.db.exec(`
      CREATE TABLE poison_target (id TEXT PRIMARY KEY);
      CREATE TABLE poison (ref TEXT REFERENCES poison_target (id) DEFERRABLE INITIALLY DEFERRED);
      CREATE TRIGGER poison_devices AFTER INSERT ON devices BEGIN INSERT INTO poison VALUES ('none'); END;
    `);
      try {
        const ids = Array.from({ length: 20 }, (_, i) => `commit-fails-${i}`);
        const answers = await Promise.all(ids.map((id) => put(id, '10.2.0.1')));
        for (const res of answers) {
          assert.equal(res.statusCode, 503, res.body);
          assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
          assert.equal(json(res).code, 'storage_unavailable');
        }
        for (const id of ids) assert.equal(seen(id), undefined, `${id} was stored`);
      } finally {
        store.db.exec('DROP TRIGGER poison_devices; DROP TABLE poison; DROP TABLE poison_target;');
      }
      // The connection is usable again right after.
      const res = await put('commit-fails-0', '10.2.0.2');
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(seen('commit-fails-0')?.ip, '10.2.0.2');
    });

    it('answers 503 when the database is locked by another writer, and stores nothing', async () => {
      const locker = new Database(path);
      store.db.pragma('busy_timeout = 50');
      locker.exec('BEGIN IMMEDIATE');
      try {
        const answers = await Promise.all(
          Array.from({ length: 5 }, (_, i) => put(`locked-${i}`, '10.3.0.1')),
        );
        for (const res of answers) {
          assert.equal(res.statusCode, 503, res.body);
          assert.equal(json(res).code, 'storage_unavailable');
        }
      } finally {
        locker.exec('ROLLBACK');
        locker.close();
        store.db.pragma('busy_timeout = 5000');
      }
      for (let i = 0; i < 5; i++) assert.equal(seen(`locked-${i}`), undefined);
      assert.equal((await put('locked-0', '10.3.0.2')).statusCode, 201);
    });

    it('answers a write that fails on its own with a 503 and the others of its batch 2xx', async () => {
      store.db.exec(`CREATE TRIGGER reject_bad BEFORE INSERT ON devices WHEN NEW.id = 'bad-one'
                   BEGIN SELECT RAISE(ABORT, 'simulated failure of one write'); END;`);
      try {
        const ids = ['good-a', 'good-b', 'bad-one', 'good-c', 'good-d'];
        const answers = await Promise.all(ids.map((id) => put(id, '10.4.0.1')));
        ids.forEach((id, i) => {
          const res = answers[i]!;
          if (id === 'bad-one') {
            assert.equal(res.statusCode, 503, res.body);
            assert.equal(json(res).code, 'storage_unavailable');
            assert.equal(seen(id), undefined);
          } else {
            assert.equal(res.statusCode, 201, res.body);
            assert.equal(seen(id)?.ip, '10.4.0.1');
          }
        });
      } finally {
        store.db.exec('DROP TRIGGER reject_bad');
      }
    });
  });
}

describe('fsync on the thread pool', () => {
  let t: TestApp;
  let store: SqliteStore;
  let cleanup: () => void;
  /** fs.fsync as sqlite.ts sees it, replaced for the duration of one test. */
  const realFsync = fs.fsync;
  const hookFsync = (hook: (fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => void) => {
    (fs as { fsync: unknown }).fsync = hook;
    syncBuiltinESMExports();
  };
  const restoreFsync = () => {
    (fs as { fsync: unknown }).fsync = realFsync;
    syncBuiltinESMExports();
  };

  before(async () => {
    const dir = tempDir();
    cleanup = dir.cleanup;
    store = new SqliteStore(join(dir.dir, 'ztp.db'), { fsyncOffLoop: true });
    t = await testApp({ store, service: { triggersEnabled: true }, closeStore: true });
  });
  after(async () => {
    restoreFsync();
    await t.close();
    cleanup();
  });
  const put = (id: string) =>
    t.app.inject({ method: 'PUT', url: `/ztp/register/${id}`, payload: { ip: '10.5.0.1' } });

  it('answers no registration before the fsync that follows its COMMIT has completed', async () => {
    const held: (() => void)[] = [];
    const fsyncStarted = new Signal();
    hookFsync((fd, cb) => {
      held.push(() => realFsync(fd, cb));
      fsyncStarted.notify();
    });
    try {
      let answered = 0;
      const answers = ['held-1', 'held-2', 'held-3'].map((id) =>
        put(id).then((res) => {
          answered++;
          return res;
        }),
      );
      await fsyncStarted.until(() => held.length > 0, 'an fsync');
      // Committed but not flushed: a lookup sent after the COMMIT sees it and is answered, while
      // the registrations, further along than the lookup, still have no answer.
      const lookup = await t.app.inject({ method: 'GET', url: '/ztp/mng/held-1' });
      assert.equal(lookup.statusCode, 200);
      assert.equal(json(lookup).ip, '10.5.0.1');
      assert.equal(answered, 0);
      restoreFsync();
      // Every batch committed meanwhile waits for an fsync of its own, started after its COMMIT.
      while (held.length > 0) held.shift()!();
      for (const res of await Promise.all(answers)) assert.equal(res.statusCode, 201, res.body);
    } finally {
      restoreFsync();
    }
  });

  it('answers 503 to every request of a batch whose fsync fails, and recovers', async () => {
    hookFsync((_fd, cb) => {
      setImmediate(() => {
        cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
      });
    });
    try {
      const answers = await Promise.all(['eio-1', 'eio-2', 'eio-3'].map((id) => put(id)));
      for (const res of answers) {
        assert.equal(res.statusCode, 503, res.body);
        assert.equal(json(res).code, 'storage_unavailable');
      }
    } finally {
      restoreFsync();
    }
    assert.equal((await put('eio-4')).statusCode, 201);
  });
});

describe('group commit in the store', () => {
  it('isolates a failing write inside its batch: the others commit, its partial changes do not', async () => {
    const { store, path, cleanup } = tempSqliteStore();
    try {
      // Fails after the device row is written (the history insert), so the savepoint must undo it.
      store.db
        .exec(`CREATE TRIGGER reject_history BEFORE INSERT ON history WHEN NEW.device_id = 'half'
                     BEGIN SELECT RAISE(ABORT, 'fails halfway'); END;`);
      // Called in one tick: one batch, one transaction.
      const writes = [
        store.register(reg('one'), opts),
        store.register(reg('half'), opts),
        store.edit('missing', { ip: '10.0.0.9', name: '', userdata: '' }, Date.now()),
        store.register(reg('two'), opts),
      ];
      const results = await Promise.allSettled(writes);
      assert.equal(results[0]!.status, 'fulfilled');
      const code = (r: PromiseSettledResult<unknown>) =>
        r.status === 'rejected' ? (r.reason as { code?: string }).code : 'fulfilled';
      assert.equal(code(results[1]!), 'storage_unavailable');
      assert.equal(code(results[2]!), 'device_not_found');
      assert.equal(results[3]!.status, 'fulfilled');

      const other = new Database(path, { readonly: true });
      const ids = other
        .prepare<[], { id: string }>('SELECT id FROM devices ORDER BY id')
        .all()
        .map((r) => r.id);
      const triggers = other
        .prepare<[], { device_id: string }>('SELECT device_id FROM triggers ORDER BY device_id')
        .all()
        .map((r) => r.device_id);
      other.close();
      assert.deepEqual(ids, ['one', 'two']);
      assert.deepEqual(triggers, ['one', 'two']);
    } finally {
      await cleanup();
    }
  });

  it('fsyncs every batch that holds a durable write, even when trigger bookkeeping shares it', async () => {
    const { store, cleanup } = tempSqliteStore();
    // The synchronous level a batch commits with, read from inside the batch.
    const level = (durable: boolean) =>
      store.database.write(
        () => store.db.pragma('synchronous', { simple: true }),
        durable ? 'durable' : 'relaxed',
      );
    try {
      await store.register(reg('dev'), opts);
      // Bookkeeping alone (claims, outcomes): NORMAL, made durable by the next FULL commit.
      const [alone] = await Promise.all([
        level(false),
        store.claimTriggers(Date.now(), 10, 60_000),
      ]);
      assert.equal(alone, 1);
      // Shared with a registration: the whole batch is FULL.
      const [shared] = await Promise.all([level(false), store.register(reg('dev2'), opts)]);
      assert.equal(shared, 2);
      // And the connection is back to FULL between batches.
      assert.equal(store.db.pragma('synchronous', { simple: true }), 2);
    } finally {
      await cleanup();
    }
  });
});

describe('kill -9 of a real server under load', () => {
  it('keeps every registration that was answered 2xx', async () => {
    const { dir, cleanup } = tempDir();
    const database = join(dir, 'crash.db');
    let server = await startServe(['--database', database]);
    const acknowledged = new Map<string, string>();
    let stop = false;
    let errors = 0;
    const client = async (c: number) => {
      for (let n = 0; !stop; n++) {
        const id = `crash-${c}-${n}`;
        const ip = `10.${c}.${(n >> 8) & 255}.${n & 255}`;
        try {
          const res = await fetch(`${server.url}/ztp/register/${id}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ip }),
          });
          await res.arrayBuffer();
          if (res.status === 201) acknowledged.set(id, ip);
        } catch {
          errors++; // the server died under this request: never answered
          return;
        }
      }
    };
    try {
      const clients = Array.from({ length: 20 }, (_, c) => client(c));
      // Kill while writes are in flight: after a few hundred answers, without waiting for a lull.
      const deadline = Date.now() + 30_000;
      while (acknowledged.size < 300) {
        if (Date.now() > deadline) throw new Error(`only ${acknowledged.size} answers in 30 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
      await server.kill9();
      stop = true;
      await Promise.all(clients);
      assert.ok(errors > 0, 'the kill did not interrupt any request');

      server = await startServe(['--database', database]);
      const list = (await (await fetch(`${server.url}/ztp/mng/list`)).json()) as {
        hosts: string[];
      };
      const stored = new Set(list.hosts);
      const lost = [...acknowledged.keys()].filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} acknowledged registrations were lost`);
      // And each holds what was acknowledged.
      const sample = [...acknowledged].slice(-20);
      for (const [id, ip] of sample) {
        const res = await fetch(`${server.url}/ztp/check/${id}`);
        assert.equal(((await res.json()) as { ip: string }).ip, ip);
      }
    } finally {
      stop = true;
      await server.stop();
      cleanup();
    }
  });
});
