import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStore } from '../storage/store-view.js';
import { json, tempDir, testApp, type TestApp } from '../helpers.js';
import { failingStore } from '../fakes/failing-store.js';
import { waitFor } from '../triggers/setup.js';

describe('when the storage fails', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp({ store: failingStore(), service: { triggersEnabled: true } });
  });
  after(async () => {
    await t.close();
  });

  const requests: [string, string, unknown?][] = [
    ['PUT', '/ztp/register/dev-1', { ip: '1.1.1.1' }],
    ['GET', '/ztp/check/dev-1'],
    ['GET', '/ztp/mng/list/'],
    ['GET', '/ztp/mng/list?limit=5'],
    ['GET', '/ztp/mng/dev-1'],
    ['PUT', '/ztp/mng/dev-1', { ip: '1.1.1.1' }],
    ['GET', '/ztp/mng/dev-1/delete'],
    ['DELETE', '/ztp/mng/dev-1'],
    ['GET', '/ztp/mng/triggers'],
    ['POST', '/ztp/mng/dev-1/trigger'],
    ['GET', '/readyz'],
  ];
  for (const [method, url, body] of requests) {
    it(`${method} ${url} answers 503 storage_unavailable, never 500`, async () => {
      const res = await t.app.inject({
        method: method as 'GET',
        url,
        ...(body ? { payload: body } : {}),
      });
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.equal(json(res).code, 'storage_unavailable');
    });
  }

  it('still validates input before touching storage', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/ztp/register/dev-1',
      payload: { ip: 'nope' },
    });
    assert.equal(res.statusCode, 400);
  });

  it('stays alive', async () => {
    assert.equal((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });
});

/**
 * SQLite opens a file that this process may not write read-only, silently and for good; as root
 * chmod does not stop writes, so the test opens the connection read-only as SQLite then does.
 */
describe('when the SQLite file cannot be written', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const register = (t: TestApp, id: string) =>
    t.app.inject({ method: 'PUT', url: `/ztp/register/${id}`, payload: { ip: '10.0.0.1' } });
  const ready = async (t: TestApp) =>
    (await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode;

  async function readOnlyApp(file: string, probeMs: number) {
    const path = join(dir, file);
    const seed = new SqliteStore(path);
    await seed.register(
      { id: 'known', ip: '10.0.0.9', name: '', userdata: '', source: '', at: 1 },
      { enqueueTrigger: false, historyLimit: 0 },
    );
    await seed.close();
    const file_ = { writable: false };
    const store = new SqliteStore(path, {
      owner: true,
      openConnection: (p) => new Database(p, { readonly: !file_.writable }),
      writeProbeIntervalMs: probeMs,
    });
    const t = await testApp({ store, closeStore: true });
    return { t, file: file_ };
  }

  it('is not ready while writes fail, and recovers by itself with the next write', async () => {
    // Probes far apart: only the write itself can recover here.
    const { t, file } = await readOnlyApp('write.db', 3_600_000);
    try {
      assert.equal(await ready(t), 503, 'ready although no write can commit');
      const failed = await register(t, 'dev-1');
      assert.equal(failed.statusCode, 503);
      assert.equal(json(failed).code, 'storage_unavailable');
      assert.equal(await ready(t), 503);
      const read = await t.app.inject({ method: 'GET', url: '/ztp/check/known' });
      assert.equal(read.statusCode, 200, 'reads keep working');

      file.writable = true;
      assert.equal((await register(t, 'dev-1')).statusCode, 201, 'still failing after the fix');
      assert.equal(await ready(t), 200);
      const check = await t.app.inject({ method: 'GET', url: '/ztp/check/dev-1' });
      assert.equal(check.statusCode, 200);
    } finally {
      await t.close();
    }
  });

  it('becomes ready again without any write traffic (probe writes)', async () => {
    const { t, file } = await readOnlyApp('probe.db', 10);
    try {
      assert.equal(await ready(t), 503);
      file.writable = true;
      await waitFor(async () => (await ready(t)) === 200, 5000, 'ready after the file is writable');
      assert.equal((await register(t, 'dev-2')).statusCode, 201);
    } finally {
      await t.close();
    }
  });
});
