/**
 * `ztp export` / `ztp import` through the real CLI: bad lines reported without losing the good
 * ones, idempotent re-import, and a round trip SQLite → PostgreSQL → SQLite that changes nothing.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseImportLine } from '../../src/cli/transfer.js';
import { openStores } from '../../src/stores.js';
import Database from 'better-sqlite3';
import { SqliteStore } from '../storage/store-view.js';
import { StoreView } from '../storage/store-view.js';
import { tempDir } from '../helpers.js';
import { createTestDatabase, PG_SKIP_MESSAGE } from '../pg-helpers.js';

const root = new URL('../../', import.meta.url).pathname;
const pgdb = await createTestDatabase('transfer');
/** A database that never held a registry (no ztp schema). */
const pgEmpty = await createTestDatabase('transfer_empty');
after(() => pgdb?.drop());
after(() => pgEmpty?.drop());

function ztp(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/ztp.mjs', ...args], { cwd: root });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
    p.stdin.end(stdin);
  });
}

/** Everything a device is, as read back from a store. */
async function snapshot(store: StoreView) {
  const ids = await store.listIds(undefined, 10_000);
  return Promise.all(
    ids.map(async (id) => ({
      device: await store.get(id),
      history: await store.history(id),
      aliases: await store.aliases(id),
    })),
  );
}

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

/** A registry with the awkward cases: MACs, unicode, large userdata, IPv6, edits, no history. */
async function populate(store: StoreView) {
  const opts = { enqueueTrigger: true, historyLimit: 5 };
  const reg = (
    id: string,
    ip: string,
    at: number,
    extra: { name?: string; userdata?: string } = {},
  ) =>
    store.register(
      { id, ip, name: extra.name ?? '', userdata: extra.userdata ?? '', source: ip, at },
      opts,
    );
  for (let i = 0; i < 8; i++) await reg('aa:bb:cc:dd:ee:01', `10.0.0.${i}`, T0 + i * 1000);
  await reg('cpu-0000000012345678', '2001:db8::1', T0 + 1, { name: 'Zürich ✓ rack "4"' });
  await reg('Serial.ABC_9', '192.0.2.7', T0 + 2, { userdata: 'x'.repeat(60_000) + '\n\t{}' });
  await reg('edited', '192.0.2.8', T0 + 3);
  await store.edit('edited', { ip: '192.0.2.9', name: 'n', userdata: 'u' }, T0 + 4);
  // Aliases, a pin and a reported value beside it.
  await store.addAliases('edited', [
    { type: 'serial', value: 'FOC123' },
    { type: 'mac', value: '00:11:22:33:44:55' },
  ]);
  await store.edit('edited', { pinned: { name: true } }, T0 + 5);
  await reg('edited', '192.0.2.9', T0 + 6, { name: 'from-device' });
  await store.register(
    { id: 'no-history', ip: '192.0.2.10', name: '', userdata: '', source: '', at: T0 + 5 },
    { enqueueTrigger: false, historyLimit: 0 },
  );
  for (let i = 0; i < 40; i++) await reg(`bulk-${String(i).padStart(3, '0')}`, '10.9.0.1', T0 + i);
}

describe('import of an export line', () => {
  it('reads the previous format (no aliases, pins or reported values) as none and unpinned', () => {
    const { device, aliases } = parseImportLine(
      JSON.stringify({
        id: 'AABBCCDDEEFF',
        ip: '10.0.0.1',
        name: 'n',
        userdata: '',
        firstSeen: '2026-01-01T00:00:00.000Z',
        lastSeen: '2026-01-01T00:00:00.000Z',
        updatedAt: '2026-01-01T00:00:00.000Z',
        registrations: 1,
        lastSource: '',
        history: [],
      }),
    );
    assert.equal(device.id, 'aa:bb:cc:dd:ee:ff');
    assert.deepEqual(device.pinned, { name: false, userdata: false });
    assert.deepEqual(device.reported, { name: null, userdata: null });
    assert.deepEqual(aliases, []);
  });

  it('carries aliases, pins and reported values, checked like the API', () => {
    const line = {
      id: 'dev',
      ip: '10.0.0.1',
      firstSeen: 1,
      lastSeen: 1,
      registrations: 1,
      aliases: [{ type: 'mac', value: 'AABB.CCDD.EEFF' }],
      pinned: { name: true },
      reported: { name: 'r', userdata: null },
    };
    const parsed = parseImportLine(JSON.stringify(line));
    assert.deepEqual(parsed.aliases, [{ type: 'mac', value: 'aa:bb:cc:dd:ee:ff' }]);
    assert.deepEqual(parsed.device.pinned, { name: true, userdata: false });
    assert.deepEqual(parsed.device.reported, { name: 'r', userdata: null });
    assert.throws(
      () => parseImportLine(JSON.stringify({ ...line, aliases: [{ type: 'imei', value: '1' }] })),
      { code: 'unknown_alias_type' },
    );
    assert.throws(() => parseImportLine(JSON.stringify({ ...line, pinned: { name: 'yes' } })));
  });
});

describe('ztp export of a registry that does not exist', () => {
  it('refuses a SQLite file that does not exist, creating nothing', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const missing = join(dir, 'mistyped.db');
      const r = await ztp(['export', '--database', missing]);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.out, '');
      assert.equal(r.err, `ztp export: no SQLite database at '${missing}'; check --database\n`);
      assert.deepEqual(readdirSync(dir), [], 'no database file was created');
    } finally {
      cleanup();
    }
  });

  it('refuses a SQLite file without the ztp schema, leaving it unchanged', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const other = join(dir, 'other.db');
      const raw = new Database(other);
      raw.exec('CREATE TABLE notes (body TEXT)');
      raw.close();
      const before = readFileSync(other);
      const r = await ztp(['export', '--database', other]);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.out, '');
      assert.match(r.err, /holds no ztp registry/);
      assert.deepEqual(readFileSync(other), before, 'no schema was added');
      assert.deepEqual(readdirSync(dir), ['other.db']);
    } finally {
      cleanup();
    }
  });

  it(
    'refuses a PostgreSQL database without the ztp schema, migrating nothing',
    { skip: pgEmpty ? false : PG_SKIP_MESSAGE },
    async () => {
      const r = await ztp(['export', '--database', pgEmpty!.url]);
      assert.equal(r.code, 2, r.err);
      assert.equal(r.out, '');
      assert.match(r.err, /^ztp export: the PostgreSQL database '\w+' holds no ztp registry/);
      const { rows } = await pgEmpty!.query("SELECT to_regclass('schema_version')::text AS t");
      assert.deepEqual(rows, [{ t: null }], 'export created no schema');
    },
  );

  it('still lets import create a new SQLite database', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const fresh = join(dir, 'new.db');
      const line = JSON.stringify({ id: 'dev-1', ip: '10.0.0.1', firstSeen: 0, lastSeen: 0 });
      const r = await ztp(['import', '--database', fresh], line);
      assert.equal(r.code, 0, r.err);
      assert.ok(existsSync(fresh));
      const exported = await ztp(['export', '--database', fresh]);
      assert.equal(exported.code, 0, exported.err);
      assert.equal(exported.out.trim().split('\n').length, 1);
    } finally {
      cleanup();
    }
  });
});

describe('ztp import', () => {
  it('imports the good lines, reports each bad one with its number and reason, and exits 1', async () => {
    const { dir, cleanup } = tempDir();
    const db = join(dir, 'ztp.db');
    const good = (id: string, ip = '10.0.0.1') =>
      JSON.stringify({
        id,
        ip,
        firstSeen: '2026-01-01T00:00:00.000Z',
        lastSeen: '2026-01-02T00:00:00.000Z',
        registrations: 1,
      });
    const input = [
      good('AA-BB-CC-DD-EE-FF'),
      '{"id": "x", "ip": ',
      good('dev-2', '999.1.1.1'),
      good('list'),
      '',
      JSON.stringify({ id: 'dev-3', ip: '10.0.0.3', firstSeen: 'yesterday', lastSeen: 0 }),
      good('dev-4', '::FFFF:10.0.0.4'),
      '[1,2]',
    ].join('\n');
    const r = await ztp(['import', '--database', db], input);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^line 2: not valid JSON$/m);
    assert.match(r.err, /^line 3: ip must be an IPv4 or IPv6 address$/m);
    assert.match(r.err, /^line 4: .*reserved/m);
    assert.match(r.err, /^line 6: firstSeen must be/m);
    assert.match(r.err, /^line 8: not a JSON object$/m);
    assert.doesNotMatch(r.err, /^line (1|5|7):/m);
    const store = new SqliteStore(db);
    try {
      assert.deepEqual(await store.listIds(undefined, 10), ['aa:bb:cc:dd:ee:ff', 'dev-4']);
      const d = await store.get('dev-4');
      assert.equal(d.ip, '10.0.0.4', 'the same ip normalisation as the API');
      assert.equal(d.lastSeen, Date.UTC(2026, 0, 2));
    } finally {
      await store.close();
      cleanup();
    }
  });

  it('refuses lines with lone UTF-16 surrogates in any string, importing the others', async () => {
    const { dir, cleanup } = tempDir();
    const db = join(dir, 'ztp.db');
    const line = (extra: Record<string, unknown>) =>
      // JSON.stringify writes a lone surrogate as its escape, as a hand-edited file would hold it.
      JSON.stringify({ id: 'dev-1', ip: '10.0.0.1', firstSeen: 0, lastSeen: 0, ...extra });
    const input = [
      line({ name: '\ud800'.repeat(255) }),
      line({ userdata: 'a\udfffb' }),
      line({ registrations: 1, lastSource: 'x\ud800' }),
      line({ registrations: 1, history: [{ at: 0, ip: '10.0.0.1', source: '\udc00' }] }),
      line({ name: 'rack 😀' }),
    ].join('\n');
    try {
      const r = await ztp(['import', '--database', db], input);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^line 1: \/name contains a lone UTF-16 surrogate/m);
      assert.match(r.err, /^line 2: \/userdata contains a lone UTF-16 surrogate/m);
      assert.match(r.err, /^line 3: \/lastSource contains a lone UTF-16 surrogate/m);
      assert.match(r.err, /^line 4: \/history\/0\/source contains a lone UTF-16 surrogate/m);
      assert.doesNotMatch(r.err, /^line 5:/m);
      const store = new SqliteStore(db);
      try {
        assert.equal((await store.get('dev-1')).name, 'rack 😀');
        assert.equal(await store.countDevices(), 1);
      } finally {
        await store.close();
      }
    } finally {
      cleanup();
    }
  });

  it('names the cause when the database refuses a write', async () => {
    const { dir, cleanup } = tempDir();
    const db = join(dir, 'ztp.db');
    const store = new SqliteStore(db);
    await store.close();
    // Stands in for any refusal of the engine (disk full, constraint, read-only file).
    const raw = new Database(db);
    raw.exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON devices BEGIN SELECT RAISE(ABORT, 'no room for devices'); END",
    );
    raw.close();
    try {
      const line = JSON.stringify({ id: 'dev-1', ip: '10.0.0.1', firstSeen: 0, lastSeen: 0 });
      const r = await ztp(['import', '--database', db], line);
      assert.equal(r.code, 1, r.err);
      assert.match(
        r.err,
        /^line 1: the storage engine failed; nothing was stored: .*no room for devices/m,
      );
    } finally {
      cleanup();
    }
  });

  it('is idempotent: importing the same export twice leaves the same registry', async () => {
    const { dir, cleanup } = tempDir();
    const a = join(dir, 'a.db');
    const b = join(dir, 'b.db');
    const src = new SqliteStore(a);
    await populate(src);
    const expected = await snapshot(src);
    await src.close();
    const exported = await ztp(['export', '--database', a]);
    assert.equal(exported.code, 0, exported.err);
    for (let i = 0; i < 2; i++) {
      const r = await ztp(['import', '--database', b], exported.out);
      assert.equal(r.code, 0, r.err);
    }
    const dst = new SqliteStore(b);
    try {
      assert.deepEqual(await snapshot(dst), expected);
    } finally {
      await dst.close();
      cleanup();
    }
  });
});

describe('parseImportLine', () => {
  it('rejects history longer than the registration count and non-integer counts', () => {
    const base = { id: 'd', ip: '10.0.0.1', firstSeen: 0, lastSeen: 0 };
    assert.throws(
      () =>
        parseImportLine(
          JSON.stringify({
            ...base,
            registrations: 1,
            history: [
              { at: 0, ip: '10.0.0.1' },
              { at: 0, ip: '10.0.0.1' },
            ],
          }),
        ),
      /more entries than registrations/,
    );
    assert.throws(
      () => parseImportLine(JSON.stringify({ ...base, registrations: 1.5 })),
      /integer/,
    );
    assert.throws(
      () => parseImportLine(JSON.stringify({ ...base, name: 5 })),
      /name must be a string/,
    );
  });
});

describe(
  'export → import round trip SQLite → PostgreSQL → SQLite',
  { skip: pgdb ? false : PG_SKIP_MESSAGE },
  () => {
    it('gives identical data: ids, records, timestamps, history', async () => {
      const { dir, cleanup } = tempDir();
      const a = join(dir, 'a.db');
      const c = join(dir, 'c.db');
      const src = new SqliteStore(a);
      await populate(src);
      const expected = await snapshot(src);
      await src.close();
      try {
        const first = await ztp(['export', '--database', a]);
        assert.equal(first.code, 0, first.err);
        assert.equal(first.out.trim().split('\n').length, expected.length);
        const intoPg = await ztp(['import', '--database', pgdb!.url], first.out);
        assert.equal(intoPg.code, 0, intoPg.err);
        const pg = new StoreView(await openStores(pgdb!.url));
        try {
          assert.deepEqual(
            await snapshot(pg),
            expected,
            'PostgreSQL holds exactly the SQLite data',
          );
        } finally {
          await pg.close();
        }
        const second = await ztp(['export', '--database', pgdb!.url]);
        assert.equal(second.code, 0, second.err);
        assert.equal(second.out, first.out, 'PostgreSQL exports the same lines');
        const back = await ztp(['import', '--database', c], second.out);
        assert.equal(back.code, 0, back.err);
        const dst = new SqliteStore(c);
        try {
          assert.deepEqual(await snapshot(dst), expected);
        } finally {
          await dst.close();
        }
      } finally {
        cleanup();
      }
    });
  },
);

describe('ztp import into PostgreSQL', { skip: pgdb ? false : PG_SKIP_MESSAGE }, () => {
  it('is idempotent: a second import of the same export changes nothing', async () => {
    await pgdb!.reset();
    const { dir, cleanup } = tempDir();
    const a = join(dir, 'a.db');
    const src = new SqliteStore(a);
    await populate(src);
    const expected = await snapshot(src);
    await src.close();
    try {
      const exported = await ztp(['export', '--database', a]);
      assert.equal(exported.code, 0, exported.err);
      const first = await ztp(['import', '--database', pgdb!.url], exported.out);
      assert.equal(first.code, 0, first.err);
      const again = await ztp(['import', '--database', pgdb!.url], exported.out);
      assert.equal(again.code, 0, again.err);
      assert.match(again.err, new RegExp(`0 created, ${expected.length} replaced, 0 bad lines`));
      const pg = new StoreView(await openStores(pgdb!.url));
      try {
        assert.deepEqual(await snapshot(pg), expected);
      } finally {
        await pg.close();
      }
    } finally {
      cleanup();
    }
  });

  it('names the reason PostgreSQL gives for a refused write, without the password', async () => {
    await pgdb!.reset();
    await pgdb!.query(
      `CREATE OR REPLACE FUNCTION refuse_devices() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'no room for devices'; END $$`,
    );
    await pgdb!.query(
      'CREATE TRIGGER refuse BEFORE INSERT ON devices FOR EACH ROW EXECUTE FUNCTION refuse_devices()',
    );
    try {
      const url = new URL(pgdb!.url);
      url.password = 'sekret-pw'; // trust authentication ignores it; it must not be printed
      const line = JSON.stringify({ id: 'dev-1', ip: '10.0.0.1', firstSeen: 0, lastSeen: 0 });
      const r = await ztp(['import', '--database', url.href], line);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^line 1: the write failed; nothing was stored: no room for devices/m);
      assert.doesNotMatch(r.err, /sekret-pw/);
    } finally {
      await pgdb!.query('DROP TRIGGER refuse ON devices');
    }
  });
});
