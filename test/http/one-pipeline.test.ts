/**
 * Every request over a real socket goes through Fastify's pipeline: the same hooks, the same
 * problem documents as app.inject(). A lookup answered beside the pipeline would skip a hook
 * added later (auth, audit, metrics) and answer a storage error as a record.
 */
import type { FastifyInstance } from 'fastify';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { testApp, type TestApp } from '../helpers.js';
import { failingStore } from '../fakes/failing-store.js';

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

function get(base: string, path: string): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function listening(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address && typeof address === 'object');
  return `http://127.0.0.1:${address.port}`;
}

describe('a lookup over a socket when the storage fails', () => {
  let t: TestApp;
  let base: string;
  before(async () => {
    t = await testApp({ store: failingStore() });
    base = await listening(t.app);
  });
  after(() => t.close());

  for (const id of ['aa:bb:cc:00:00:01', 'dev-1']) {
    it(`GET /ztp/check/${id} answers the 503 problem that inject answers`, async () => {
      const live = await get(base, `/ztp/check/${id}`);
      const ref = await t.app.inject({ method: 'GET', url: `/ztp/check/${id}` });
      assert.equal(live.status, 503, live.body);
      assert.equal(live.contentType, 'application/problem+json; charset=utf-8');
      assert.equal((JSON.parse(live.body) as { code: string }).code, 'storage_unavailable');
      assert.equal(live.status, ref.statusCode);
      assert.equal(live.body, ref.body);
    });
  }
});

describe('a hook added to the app', () => {
  let t: TestApp;
  let base: string;
  const seen: string[] = [];
  before(async () => {
    t = await testApp({
      app: {
        hooks: (app) => {
          app.addHook('onRequest', (request, _reply, done) => {
            seen.push(`onRequest ${request.url}`);
            done();
          });
          app.addHook('preHandler', (request, reply, done) => {
            void reply.header('x-audited', 'yes');
            seen.push(`preHandler ${request.url}`);
            done();
          });
        },
      },
    });
    await t.service.register('aa:bb:cc:00:00:01', { ip: '10.0.0.1' }, '127.0.0.1');
    base = await listening(t.app);
  });
  after(() => t.close());

  it('runs for a lookup of a registered device over a real socket', async () => {
    seen.length = 0;
    const res = await new Promise<{ status: number; audited: unknown }>((resolve, reject) => {
      httpRequest(`${base}/ztp/check/aa:bb:cc:00:00:01`, (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, audited: r.headers['x-audited'] }));
      })
        .on('error', reject)
        .end();
    });
    assert.equal(res.status, 200);
    assert.equal(res.audited, 'yes');
    assert.deepEqual(seen, [
      'onRequest /ztp/check/aa:bb:cc:00:00:01',
      'preHandler /ztp/check/aa:bb:cc:00:00:01',
    ]);
  });
});
