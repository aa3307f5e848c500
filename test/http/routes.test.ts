/**
 * Routes as a user meets them: HEAD changes nothing, a wrong method is 405 with Allow, empty JSON
 * bodies, one-sentence validation problems, cross-site refusal, and no secret in a log line or
 * problem document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { json, testApp, type TestApp } from '../helpers.js';

const ID = 'aa:bb:cc:dd:ee:01';

interface LogLine {
  msg: string;
  level: number;
  method?: string;
  url?: string;
  status?: number;
}

async function registered(t: TestApp, id = ID): Promise<void> {
  const r = await t.app.inject({
    method: 'PUT',
    url: `/ztp/register/${id}`,
    payload: { ip: '10.0.0.1' },
  });
  assert.ok(r.statusCode === 201 || r.statusCode === 200, r.body);
}

async function exists(t: TestApp, id = ID): Promise<boolean> {
  return (await t.app.inject({ method: 'GET', url: `/ztp/check/${id}` })).statusCode === 200;
}

describe('routes', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
  });
  after(() => t.close());

  describe('HEAD never changes anything', () => {
    it('HEAD on the seed delete URL is 405 with Allow: GET and the device stays', async () => {
      await registered(t);
      const r = await t.app.inject({ method: 'HEAD', url: `/ztp/mng/${ID}/delete` });
      assert.equal(r.statusCode, 405);
      assert.equal(r.headers.allow, 'GET');
      assert.ok(await exists(t), 'the device is still registered');
    });

    it('HEAD still works on the read routes', async () => {
      await registered(t);
      for (const url of [`/ztp/check/${ID}`, `/ztp/mng/${ID}`, '/ztp/mng/list', '/healthz']) {
        assert.equal((await t.app.inject({ method: 'HEAD', url })).statusCode, 200, url);
      }
      assert.ok(await exists(t));
    });
  });

  describe('a known path with a wrong method', () => {
    it('is 405 method_not_allowed with the Allow header of the registered routes', async () => {
      for (const method of ['PATCH', 'GET', 'DELETE'] as const) {
        const r = await t.app.inject({ method, url: '/ztp/register/x', payload: {} });
        assert.equal(r.statusCode, 405, `${method}: ${r.body}`);
        assert.equal(r.headers.allow, 'POST, PUT');
        const p = json(r);
        assert.equal(p.code, 'method_not_allowed');
        assert.equal(p.type, 'urn:ztp:problem:method_not_allowed');
        assert.match(String(p.detail), /allowed: POST, PUT/);
      }
      const check = await t.app.inject({ method: 'PUT', url: '/ztp/check/x', payload: {} });
      assert.equal(check.statusCode, 405);
      assert.equal(check.headers.allow, 'GET, HEAD');
      const list = await t.app.inject({ method: 'POST', url: '/ztp/mng/list/?limit=1' });
      assert.equal(list.statusCode, 405);
      assert.match(String(list.headers.allow), /\bGET\b/);
    });

    it('an unknown path is still 404 route_not_found', async () => {
      const r = await t.app.inject({ method: 'POST', url: '/nowhere/at/all' });
      assert.equal(r.statusCode, 404);
      assert.equal(json(r).code, 'route_not_found');
      assert.equal(r.headers.allow, undefined);
    });
  });

  describe('bodies', () => {
    it('an empty body declared as JSON registers like no body', async () => {
      const r = await t.app.inject({
        method: 'PUT',
        url: '/ztp/register/empty-body-1',
        headers: { 'content-type': 'application/json' },
        payload: '',
      });
      assert.equal(r.statusCode, 201, r.body);
      assert.equal(json(r).ip, '127.0.0.1');
    });

    it('a validation problem is one sentence per member', async () => {
      await registered(t);
      const both = await t.app.inject({
        method: 'PUT',
        url: `/ztp/mng/${ID}`,
        payload: { name: 'n'.repeat(300), userdata: 5 },
      });
      assert.equal(both.statusCode, 400);
      assert.equal(
        json(both).detail,
        'name must be a string of at most 255 characters; userdata must be a string',
      );
      assert.deepEqual(json<{ errors: unknown }>(both).errors, [
        { path: '/name', message: 'name must be a string of at most 255 characters' },
        { path: '/userdata', message: 'userdata must be a string' },
      ]);

      const query = await t.app.inject({ method: 'GET', url: '/ztp/mng/list?limit=0' });
      assert.equal(query.statusCode, 400);
      assert.equal(json(query).code, 'invalid_query');
      assert.equal(json(query).detail, 'limit must be an integer from 1 to 10000');

      const array = await t.app.inject({ method: 'PUT', url: '/ztp/register/x', payload: [1] });
      assert.equal(json(array).detail, 'the body must be a JSON object');
    });
  });

  describe('cross-site requests', () => {
    for (const site of ['cross-site', 'same-site']) {
      it(`a state change marked Sec-Fetch-Site: ${site} is refused and changes nothing`, async () => {
        await registered(t);
        const headers = { 'sec-fetch-site': site };
        for (const req of [
          { method: 'GET', url: `/ztp/mng/${ID}/delete` },
          { method: 'DELETE', url: `/ztp/mng/${ID}` },
          { method: 'PUT', url: `/ztp/mng/${ID}`, payload: { ip: '10.9.9.9' } },
          { method: 'PUT', url: '/ztp/register/cross-site-new', payload: { ip: '10.9.9.9' } },
        ] as const) {
          const r = await t.app.inject({ ...req, headers });
          assert.equal(r.statusCode, 403, `${req.method} ${req.url}`);
          assert.equal(json(r).code, 'cross_site_request');
        }
        assert.equal(json(await t.app.inject(`/ztp/check/${ID}`)).ip, '10.0.0.1');
        assert.ok(!(await exists(t, 'cross-site-new')));
      });
    }

    it('reads from anywhere, and state changes from the same origin, a typed URL or curl pass', async () => {
      await registered(t);
      const read = await t.app.inject({
        url: `/ztp/check/${ID}`,
        headers: { 'sec-fetch-site': 'cross-site' },
      });
      assert.equal(read.statusCode, 200);
      for (const headers of [
        { 'sec-fetch-site': 'same-origin' },
        { 'sec-fetch-site': 'none' },
        {},
      ]) {
        await registered(t);
        const r = await t.app.inject({ url: `/ztp/mng/${ID}/delete`, headers });
        assert.equal(r.statusCode, 200, JSON.stringify(headers));
      }
    });
  });
});

describe('request log and problem documents', () => {
  async function withLog(run: (t: TestApp) => Promise<void>): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    const stream = { write: (s: string) => lines.push(JSON.parse(s) as LogLine) };
    const t = await testApp({ app: { logger: { level: 'info', stream } } });
    try {
      await run(t);
    } finally {
      await t.close();
    }
    return lines;
  }

  it('a delete by either form is logged at info', async () => {
    const lines = await withLog(async (t) => {
      await registered(t, 'dev-1');
      await registered(t, 'dev-2');
      assert.equal((await t.app.inject('/ztp/mng/dev-1/delete')).statusCode, 200);
      assert.equal(
        (await t.app.inject({ method: 'DELETE', url: '/ztp/mng/dev-2' })).statusCode,
        204,
      );
    });
    const deletes = lines
      .filter((l) => l.msg === 'request' && l.method !== 'PUT')
      .map((l) => [l.method, l.url, l.status, l.level]);
    assert.deepEqual(deletes, [
      ['GET', '/ztp/mng/dev-1/delete', 200, 30],
      ['DELETE', '/ztp/mng/dev-2', 204, 30],
    ]);
  });

  it('credentials in the query string reach neither the log nor the problem document', async () => {
    const secret = 'ztp_SECRETVALUE123';
    const lines = await withLog(async (t) => {
      const r = await t.app.inject({
        method: 'PUT',
        url: `/ztp/register/bad%20id?access_token=${secret}&Token=${secret}&x=1`,
        payload: {},
      });
      assert.equal(r.statusCode, 400);
      assert.equal(
        json(r).instance,
        '/ztp/register/bad%20id?access_token=[redacted]&Token=[redacted]&x=1',
      );
      assert.equal(json(r).type, 'urn:ztp:problem:invalid_id');
      assert.doesNotMatch(r.body, new RegExp(secret));
      const missing = await t.app.inject(`/ztp/check/nobody?api_key=${secret}`);
      assert.equal(missing.statusCode, 404);
      assert.doesNotMatch(missing.body, new RegExp(secret));
    });
    const text = JSON.stringify(lines);
    assert.doesNotMatch(text, new RegExp(secret));
    assert.ok(lines.some((l) => l.url === '/ztp/check/nobody?api_key=[redacted]'));
  });

  it('a lookup over a socket is logged with its credential redacted too', async () => {
    const lines: LogLine[] = [];
    const stream = { write: (s: string) => lines.push(JSON.parse(s) as LogLine) };
    const t = await testApp({ app: { logger: { level: 'debug', stream } } });
    try {
      await registered(t);
      const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
      const ok = await fetch(`${base}/ztp/check/${ID}?token=s3cr3t-device`);
      assert.equal(ok.status, 200);
      const head = await fetch(`${base}/ztp/mng/${ID}/delete?sig=s3cr3t-device`, {
        method: 'HEAD',
      });
      assert.equal(head.status, 405);
      assert.ok(await exists(t));
    } finally {
      await t.close();
    }
    const requests = lines.filter((l) => l.msg === 'request').map((l) => l.url);
    assert.ok(requests.includes(`/ztp/check/${ID}?token=[redacted]`), requests.join('\n'));
    assert.ok(requests.includes(`/ztp/mng/${ID}/delete?sig=[redacted]`), requests.join('\n'));
    assert.doesNotMatch(JSON.stringify(lines), /s3cr3t-device/);
  });
});
