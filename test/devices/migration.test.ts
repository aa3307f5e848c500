/**
 * A registry made by the previous release (schema version 3) opened by this one, on both
 * engines: every device keeps its data; a bare 12-hex id moves to its canonical MAC with its
 * history and triggers when that MAC is free, and is left (and listed for the start-up warning)
 * when it is not.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { DeviceNotFoundError } from '../../src/errors.js';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import { openPostgresStore, SqliteStore, type StoreView } from '../storage/store-view.js';
import { tempDir } from '../helpers.js';

const PREVIOUS = MIGRATIONS.filter((m) => m.version <= 3);

/** The rows a version-3 registry holds, as SQL both engines run. */
const FIXTURE = [
  `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
   VALUES ('AABBCCDDEEFF', '10.0.0.1', 'bare', 'ud', 1, 5, 5, 2, '192.0.2.1'),
          ('AABBCCDDEE01', '10.0.0.2', 'twin', '', 1, 1, 1, 1, ''),
          ('aa:bb:cc:dd:ee:01', '10.0.0.3', 'canonical', '', 1, 1, 1, 1, ''),
          ('server-7', '10.0.0.4', 'kept', 'note', 1, 1, 1, 1, '')`,
  `INSERT INTO history (device_id, seq, at, ip, source) VALUES
     ('AABBCCDDEEFF', 1, 1, '10.0.0.9', '192.0.2.1'), ('AABBCCDDEEFF', 2, 5, '10.0.0.1', '192.0.2.1'),
     ('server-7', 1, 1, '10.0.0.4', '')`,
  `INSERT INTO triggers (device_id, ip, key, state, created_at, next_attempt_at, updated_at)
   VALUES ('AABBCCDDEEFF', '10.0.0.1', 'k1', 'delivered', 5, 5, 5)`,
  `UPDATE devices SET last_trigger_id = 1 WHERE id = 'AABBCCDDEEFF'`,
];

async function checkUpgraded(store: StoreView): Promise<void> {
  const moved = await store.get('aa:bb:cc:dd:ee:ff');
  assert.equal(moved.name, 'bare');
  assert.equal(moved.userdata, 'ud');
  assert.equal(moved.registrations, 2);
  assert.deepEqual(moved.pinned, { name: false, userdata: false });
  assert.deepEqual(
    (await store.history('aa:bb:cc:dd:ee:ff')).map((h) => h.ip),
    ['10.0.0.1', '10.0.0.9'],
  );
  assert.equal((await store.latestTrigger('aa:bb:cc:dd:ee:ff'))?.key, 'k1');
  await assert.rejects(store.get('AABBCCDDEEFF'), DeviceNotFoundError);
  // Its MAC was taken: both stay, and the bare one is named for the warning.
  assert.equal((await store.get('aa:bb:cc:dd:ee:01')).name, 'canonical');
  assert.equal((await store.get('AABBCCDDEE01')).name, 'twin');
  assert.deepEqual(await store.bareMacIds(10), ['AABBCCDDEE01']);
  const kept = await store.get('server-7');
  assert.equal(kept.userdata, 'note');
  assert.equal((await store.history('server-7')).length, 1);
  assert.equal(await store.countDevices(), 4);
  // The new tables work on the upgraded registry.
  await store.addAliases('server-7', [{ type: 'serial', value: 'S7' }]);
  assert.equal((await store.get('S7')).id, 'server-7');
}

describe('a previous-release registry on SQLite', () => {
  it('opens with all its data and bare MAC ids moved', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'ztp.db');
    const old = new Database(path);
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
    for (const m of PREVIOUS) {
      old.exec(m.sqlite);
      old.prepare('INSERT INTO schema_version (version) VALUES (?)').run(m.version);
    }
    for (const sql of FIXTURE) old.exec(sql);
    old.close();
    const store = new SqliteStore(path);
    try {
      await checkUpgraded(store);
    } finally {
      await store.close();
      cleanup();
    }
  });
});

const pgDb = await createTestDatabase('alias_migration');
if (!pgDb) skippedPgSuite('a previous-release registry on PostgreSQL');
else {
  describe('a previous-release registry on PostgreSQL', () => {
    after(() => pgDb.drop());
    it('opens with all its data and bare MAC ids moved', async () => {
      const client = new pg.Client({ connectionString: pgDb.url });
      await client.connect();
      try {
        await client.query('CREATE TABLE schema_version (version INTEGER NOT NULL)');
        for (const m of PREVIOUS) {
          await client.query(m.postgres);
          await client.query('INSERT INTO schema_version (version) VALUES ($1)', [m.version]);
        }
        for (const sql of FIXTURE) await client.query(sql);
      } finally {
        await client.end();
      }
      const store = await openPostgresStore(pgDb.url);
      try {
        await checkUpgraded(store);
      } finally {
        await store.close();
      }
    });
  });
}
