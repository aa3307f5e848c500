import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StorageUnavailableError } from '../../src/errors.js';
import { SqliteStore } from '../../src/storage/sqlite.js';
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

  it('rejects operations after close with StorageUnavailableError', async () => {
    const { store, cleanup } = tempSqliteStore();
    await store.close();
    await assert.rejects(store.get('x'), StorageUnavailableError);
    await assert.rejects(store.listIds(undefined, 1), StorageUnavailableError);
    await cleanup();
  });
});
