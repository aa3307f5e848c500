import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { json, testApp, type TestApp } from '../helpers.js';
import { failingStore } from '../fakes/failing-store.js';

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
