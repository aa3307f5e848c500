/**
 * The store contract against PostgreSQL, plus what only PostgreSQL has: several processes on one
 * database (migrations under an advisory lock, SKIP LOCKED claims), losing the database and
 * getting it back, timeouts, and never leaking the password.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  ConfigError,
  DeviceNotFoundError,
  InvalidInputError,
  StorageUnavailableError,
} from '../../src/errors.js';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { openPostgresStore, PostgresStore } from './store-view.js';
import type { Registration } from '../../src/devices/store.js';
import type { Trigger } from '../../src/triggers/outbox.js';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import { storeSuite } from './store-suite.js';

const db = await createTestDatabase('store');

const T0 = 1_700_000_000_000;
function reg(id: string, ip: string, at = T0): Registration {
  return { id, ip, name: '', userdata: '', source: '192.0.2.1', at };
}
const withTrigger = { enqueueTrigger: true, historyLimit: 5 };

/** A TCP proxy to the real server that the test can take down and bring back. */
async function proxyTo(target: URL) {
  const sockets = new Set<net.Socket>();
  const make = () =>
    net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
  let server = make();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    down: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
    up: async () => {
      server = make();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
  };
}

if (!db) {
  skippedPgSuite('PostgreSQL store');
} else {
  after(() => db.drop());

  storeSuite('postgres', () => db.openStore());

  describe('PostgresStore specifics', () => {
    let a: PostgresStore;
    let b: PostgresStore;
    before(async () => {
      await db.reset();
      a = await openPostgresStore(db.url);
      b = await openPostgresStore(db.url);
    });
    after(async () => {
      await a.close();
      await b.close();
    });

    it('several processes migrating at once apply each migration exactly once', async () => {
      const stores = await Promise.all(
        Array.from({ length: 4 }, () => openPostgresStore(db.url, { poolSize: 2 })),
      );
      await Promise.all(stores.map((s) => s.close()));
      const { rows } = await db.query('SELECT version FROM schema_version ORDER BY version');
      assert.deepEqual(
        rows.map((r: { version: number }) => r.version),
        MIGRATIONS.map((m) => m.version),
      );
    });

    it('starts with a read/write-only database user once the schema exists', async () => {
      const role = `ztp_rw_${Math.random().toString(36).slice(2, 10)}`;
      const tables = 'devices, history, triggers, aliases, schema_version';
      await db.query(`CREATE ROLE ${role} LOGIN`);
      try {
        await db.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
        await db.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
        await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${tables} TO ${role}`);
        const u = new URL(db.url);
        u.username = role;
        const s = await openPostgresStore(u.href);
        try {
          await s.register(reg('rw', '10.0.0.1'), withTrigger);
          assert.equal((await s.get('rw')).ip, '10.0.0.1');
        } finally {
          await s.close();
        }
      } finally {
        await db.query(`DROP OWNED BY ${role}`);
        await db.query(`DROP ROLE ${role}`);
      }
    });

    it("a restarted replica releases its dead predecessor's leases, never another live replica's", async () => {
      await db.reset();
      const dead = await openPostgresStore(db.url, { instanceId: 'replica-a' });
      const live = await openPostgresStore(db.url, { instanceId: 'replica-b' });
      try {
        await dead.register(reg('lease-a', '10.0.0.1'), withTrigger);
        await live.register(reg('lease-b', '10.0.0.2'), withTrigger);
        const [deadClaim] = await dead.claimTriggers(T0, 1, 60_000);
        const [liveClaim] = await live.claimTriggers(T0, 1, 60_000);
        assert.equal(deadClaim?.deviceId, 'lease-a');
        assert.equal(liveClaim?.deviceId, 'lease-b');
        // replica-a is killed (its pool just goes) and starts again with the same instance id.
        await dead.close();
        const restarted = await openPostgresStore(db.url, { instanceId: 'replica-a' });
        try {
          // Its own new lease is live too: only the dead incarnation's are released.
          await restarted.register(reg('lease-a2', '10.0.0.3'), withTrigger);
          const [ownClaim] = await restarted.claimTriggers(T0, 1, 60_000);
          assert.equal(ownClaim?.deviceId, 'lease-a2');
          assert.equal(await restarted.releaseStaleLeases(), 1);
          // Due again at once, well within the 60 s lease: the dead one's trigger, only it.
          const again = await restarted.claimTriggers(T0 + 1, 10, 60_000);
          assert.deepEqual(
            again.map((t) => t.deviceId),
            ['lease-a'],
          );
          assert.equal(
            await live.completeTrigger(liveClaim, { kind: 'delivered', at: T0 + 2 }),
            true,
          );
          assert.equal(
            await restarted.completeTrigger(ownClaim, { kind: 'delivered', at: T0 + 2 }),
            true,
          );
          // Another replica's start releases nothing of replica-a's.
          assert.equal(await live.releaseStaleLeases(), 0);
        } finally {
          await restarted.close();
        }
      } finally {
        await live.close();
      }
    });

    it('is not ready while the database refuses writes, and writes again once it takes them', async () => {
      await db.reset();
      const name = new URL(db.url).pathname.slice(1);
      // The admin session is on the same database: it lifts the default for itself first.
      const writable = `BEGIN READ WRITE; ALTER DATABASE ${name} RESET default_transaction_read_only; COMMIT`;
      const store = await openPostgresStore(db.url, { poolSize: 4 });
      try {
        await store.register(reg('ro-1', '10.0.0.1'), withTrigger);
        await store.ping();
        // As on a standby or a database made read-only: sessions opened from now on cannot write.
        await db.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
        await db.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
        );
        await assert.rejects(
          store.register(reg('ro-2', '10.0.0.2'), withTrigger),
          StorageUnavailableError,
        );
        await assert.rejects(store.ping(), /takes no writes/);
        assert.equal((await store.get('ro-1')).ip, '10.0.0.1', 'reads keep working');

        await db.query(writable);
        // Not on a pooled session that still has the read-only default.
        assert.equal((await store.register(reg('ro-2', '10.0.0.2'), withTrigger)).created, true);
        await store.ping();
      } finally {
        await db.query(writable);
        await store.close();
      }
    });

    it('two stores claim disjoint sets of triggers (SKIP LOCKED) that together are all of them', async () => {
      await db.reset();
      await Promise.all(
        Array.from({ length: 120 }, (_, i) => a.register(reg(`d-${i}`, '10.0.0.1'), withTrigger)),
      );
      const claimed: Trigger[][] = [[], []];
      await Promise.all(
        [a, b].map(async (s, n) => {
          for (let round = 0; round < 50; round++) {
            const got = await s.claimTriggers(T0 + 1, 7, 60_000);
            if (got.length === 0) break;
            claimed[n]!.push(...got);
          }
        }),
      );
      const ids = [...claimed[0]!, ...claimed[1]!].map((t) => t.id);
      assert.equal(ids.length, 120);
      assert.equal(new Set(ids).size, 120, 'no trigger claimed twice');
    });

    it('keeps per-device order across stores: the waiting trigger is not claimable while the older one is leased', async () => {
      await db.reset();
      await a.register(reg('dev-o', '10.0.0.1'), withTrigger);
      const [first] = await a.claimTriggers(T0 + 1, 10, 60_000);
      assert.equal(first?.ip, '10.0.0.1');
      await b.register(reg('dev-o', '10.0.0.2', T0 + 2), withTrigger);
      await b.register(reg('dev-o', '10.0.0.3', T0 + 3), withTrigger);
      assert.deepEqual(await b.claimTriggers(T0 + 10, 10, 60_000), []);
      assert.equal((await b.countTriggers()).pending, 2, 'the two later registrations coalesced');
      assert.equal(
        await a.completeTrigger(first, { kind: 'delivered', at: T0 + 11 }),
        true,
        'the lease holder completes',
      );
      const next = await b.claimTriggers(T0 + 12, 10, 60_000);
      assert.deepEqual(
        next.map((t) => t.ip),
        ['10.0.0.3'],
      );
    });

    it('a write that times out on a locked row fails alone; the rest of its batch commits', async () => {
      await db.reset();
      const s = await openPostgresStore(db.url, { statementTimeout: 300 });
      await s.register(reg('locked', '10.0.0.1'), withTrigger);
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query("SELECT * FROM devices WHERE id = 'locked' FOR UPDATE");
        const [blocked, free] = await Promise.allSettled([
          s.register(reg('locked', '10.0.0.2', T0 + 1), withTrigger),
          s.register(reg('free', '10.0.0.3', T0 + 1), withTrigger),
        ]);
        assert.equal(blocked.status, 'rejected');
        assert.ok(blocked.reason instanceof StorageUnavailableError, String(blocked.reason));
        assert.equal(free.status, 'fulfilled');
        await holder.query('ROLLBACK');
        assert.equal((await s.get('locked')).ip, '10.0.0.1', 'the failed write left nothing');
        assert.equal((await s.get('free')).ip, '10.0.0.3');
      } finally {
        await holder.end();
        await s.close();
      }
    });

    it('isolates a failed write at any place of a batch that mixes SQL-text and function writes', async () => {
      await db.reset();
      const s = await openPostgresStore(db.url, { statementTimeout: 300 });
      for (const id of ['a', 'm', 'z']) await s.register(reg(id, '10.0.0.1'), withTrigger);
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query("SELECT * FROM devices WHERE id IN ('a', 'm') FOR UPDATE");
        const fields = { ip: '10.9.9.9', name: 'edited', userdata: '' };
        // One batch, in device order: a failing registration first (it takes the batch's BEGIN
        // with it), a failing edit in the middle, writes that succeed after each.
        const [a, b, m, z] = await Promise.allSettled([
          s.register(reg('a', '10.0.0.2', T0 + 1), withTrigger),
          s.register(reg('b', '10.0.0.2', T0 + 1), withTrigger),
          s.edit('m', fields, T0 + 1),
          s.register(reg('z', '10.0.0.2', T0 + 1), withTrigger),
        ]);
        assert.equal(a.status, 'rejected');
        assert.ok(a.reason instanceof StorageUnavailableError, String(a.reason));
        assert.equal(b.status, 'fulfilled');
        assert.equal(m.status, 'rejected');
        assert.ok(m.reason instanceof StorageUnavailableError, String(m.reason));
        assert.equal(z.status, 'fulfilled');
        await holder.query('ROLLBACK');
        assert.equal((await s.get('a')).ip, '10.0.0.1', 'the failed registration left nothing');
        assert.equal((await s.get('b')).ip, '10.0.0.2');
        assert.equal((await s.get('m')).name, '', 'the failed edit left nothing');
        assert.equal((await s.get('z')).ip, '10.0.0.2');
        assert.equal((await s.history('a')).length, 1);
        assert.equal((await s.latestTrigger('a'))?.ip, '10.0.0.1', "a's trigger was not touched");
        assert.equal((await s.latestTrigger('z'))?.ip, '10.0.0.2');
        // A batch of one that fails (its BEGIN and COMMIT travel with its statements) leaves
        // nothing either, and the store goes on.
        await holder.query('BEGIN');
        await holder.query("SELECT * FROM devices WHERE id = 'z' FOR UPDATE");
        await assert.rejects(
          s.register(reg('z', '10.0.0.3', T0 + 2), withTrigger),
          StorageUnavailableError,
        );
        await holder.query('ROLLBACK');
        assert.equal((await s.get('z')).ip, '10.0.0.2');
        await s.register(reg('z', '10.0.0.4', T0 + 3), withTrigger);
        assert.equal((await s.get('z')).registrations, 3);
      } finally {
        await holder.end();
        await s.close();
      }
    });

    it('a batch larger than one round trip answers each write with its own result, a failure in a later trip alone', async () => {
      await db.reset();
      const s = await openPostgresStore(db.url, { statementTimeout: 300 });
      const ids = Array.from({ length: 150 }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
      await s.register(reg('dev-100', '10.0.0.1'), withTrigger);
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query("SELECT * FROM devices WHERE id = 'dev-100' FOR UPDATE");
        const settled = await Promise.allSettled(
          ids.map((id, i) => s.register(reg(id, `10.1.${i >> 8}.${i & 255}`, T0 + 1), withTrigger)),
        );
        await holder.query('ROLLBACK');
        settled.forEach((r, i) => {
          if (ids[i] === 'dev-100') {
            assert.equal(r.status, 'rejected', 'the locked device (second round trip) fails');
          } else {
            assert.equal(r.status, 'fulfilled', ids[i]);
            assert.equal(r.value.device.id, ids[i]);
            assert.equal(r.value.trigger?.ip, `10.1.${i >> 8}.${i & 255}`);
          }
        });
        assert.equal((await s.get('dev-100')).ip, '10.0.0.1');
        assert.equal((await s.get('dev-149')).ip, '10.1.0.149');
        assert.equal(await s.countDevices(), 150);
      } finally {
        await holder.end();
        await s.close();
      }
    });

    it('fails fast with StorageUnavailableError while the database is away, and recovers by itself', async () => {
      await db.reset();
      const proxy = await proxyTo(new URL(db.url));
      const u = new URL(db.url);
      u.host = `127.0.0.1:${proxy.port}`;
      const errors: string[] = [];
      const s = await openPostgresStore(u.href, {
        connectTimeout: 1000,
        onConnectionError: (m) => errors.push(m),
      });
      try {
        await s.register(reg('before', '10.0.0.1'), withTrigger);
        await proxy.down();
        await assert.rejects(s.ping(), StorageUnavailableError);
        await assert.rejects(
          s.register(reg('during', '10.0.0.2'), withTrigger),
          StorageUnavailableError,
        );
        await assert.rejects(s.get('before'), StorageUnavailableError);
        await proxy.up();
        await s.ping();
        await s.register(reg('after', '10.0.0.3'), withTrigger);
        assert.deepEqual(await s.listIds(undefined, 10), ['after', 'before']);
      } finally {
        await s.close();
        await proxy.down();
      }
    });

    it('refuses NUL characters (which PostgreSQL text cannot hold) as bad input, not as a 503', async () => {
      await assert.rejects(
        a.register({ ...reg('nul', '10.0.0.1'), userdata: 'a\u0000b' }, withTrigger),
        (e: unknown) => e instanceof InvalidInputError && e.code === 'invalid_body',
      );
      await assert.rejects(a.get('nul'), DeviceNotFoundError);
    });

    it('never shows the password in errors', async () => {
      const secret = 'S3cr3t-pa55';
      const err = await openPostgresStore(`postgres://ztp:${secret}@127.0.0.1:1/ztp`, {
        connectTimeout: 1000,
      }).then(
        () => assert.fail('connected to a closed port'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof StorageUnavailableError);
      const text = `${err.message} ${String((err.cause as Error | undefined)?.message)}`;
      assert.doesNotMatch(text, new RegExp(secret));
      const bad = await openPostgresStore(`postgres://ztp:${secret}@[::1/x`).catch(
        (e: unknown) => e,
      );
      assert.ok(bad instanceof ConfigError);
      assert.doesNotMatch(bad.message, new RegExp(secret));
    });
  });
}
