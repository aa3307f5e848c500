/**
 * The lookup fast lane (src/http/fast-check.ts) over real HTTP: what it answers must be what the
 * Fastify route answers, and everything it does not answer must reach Fastify untouched.
 * A query string (ignored by the route) makes the lane hand a request to Fastify, which routes it
 * like the bare path: that gives the reference answer for the same lookup.
 */
import type { FastifyInstance } from 'fastify';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { operatorFeatures } from '../../src/operator.js';
import { buildGuards } from '../../src/security/guards.js';
import { hashToken, parseTokens, TokenSet } from '../../src/security/tokens.js';
import { buildApp, type AppOptions } from '../../src/app.js';
import { DeviceService } from '../../src/devices/service.js';
import { EventBus } from '../../src/events/bus.js';
import type { SqliteStore } from '../../src/storage/sqlite.js';
import type { Store } from '../../src/storage/store.js';
import { tempSqliteStore } from '../helpers.js';

type TestApp = Awaited<ReturnType<typeof start>>['t'];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET') {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Everything a client sees but the per-response date and request id. */
function comparable(a: Answer) {
  const headers = { ...a.headers };
  delete headers.date;
  delete headers['x-request-id'];
  return { status: a.status, headers, body: a.body };
}

async function listening(t: { app: FastifyInstance }): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  assert.ok(address && typeof address === 'object');
  return `http://127.0.0.1:${address.port}`;
}

const DEVICES: [string, Record<string, string>][] = [
  ['aa:bb:cc:00:00:01', { ip: '10.0.0.1' }],
  [
    'aa:bb:cc:00:00:02',
    { ip: '2001:db8::2', name: 'rack "4" \\ row 2', userdata: '{"a":[1,\t2]}\r\n\u0001' },
  ],
  [
    'aa:bb:cc:00:00:03',
    { ip: '10.0.0.3', name: 'ünïcødé 🚀 \u2028 \u2029', userdata: '</script>\n' },
  ],
  ['cpu-0000000012345678', { ip: '192.0.2.7', name: 'x'.repeat(255), userdata: 'é'.repeat(500) }],
];

/**
 * The real app on a temporary SQLite file, with the operator features (metrics), listening.
 * `asyncStore` hides the store's synchronous lookup, as on PostgreSQL.
 */
async function start(opts: Partial<AppOptions> = {}, asyncStore = false) {
  const { store: sqlite, cleanup } = tempSqliteStore();
  const store: Store = asyncStore
    ? Object.assign(Object.create(sqlite) as SqliteStore, { lookupNow: undefined })
    : sqlite;
  const events = new EventBus();
  const service = new DeviceService(store, { triggersEnabled: false, historyLimit: 20, events });
  const operator = operatorFeatures({ service, events, processMetrics: false });
  const app = await buildApp({ service, logger: false, ...opts, plugins: [operator.plugin] });
  const t = {
    app,
    close: async () => {
      await app.close();
      await cleanup();
    },
  };
  for (const [id, body] of DEVICES) await service.register(id, body, '127.0.0.1');
  const base = await listening(t);
  return { t, base, metrics: () => operator.metrics.text() };
}

function checkCount(text: string): number {
  const m =
    /^ztp_http_requests_total\{method="GET",route="\/ztp\/check\/:id",status="200"\} (\d+)$/m.exec(
      text,
    );
  return m ? Number(m[1]) : 0;
}

describe('lookup fast lane', () => {
  let t: TestApp;
  let base: string;
  let metrics: () => Promise<string>;

  before(async () => {
    ({ t, base, metrics } = await start());
  });
  after(() => t.close());

  it('answers a registered device as the Fastify route does', async () => {
    const before = { ...t.app.fastCheckStats };
    for (const [id, body] of DEVICES) {
      const fast = await get(base, `/ztp/check/${id}`);
      const reference = await get(base, `/ztp/check/${id}?via=fastify`);
      assert.equal(fast.status, 200);
      assert.deepEqual(comparable(fast), comparable(reference), id);
      assert.deepEqual(JSON.parse(fast.body), {
        id,
        ip: body.ip,
        name: body.name ?? '',
        userdata: body.userdata ?? '',
      });
      assert.match(String(fast.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    }
    assert.equal(t.app.fastCheckStats.answered - before.answered, DEVICES.length);
    assert.equal(t.app.fastCheckStats.passed - before.passed, DEVICES.length);
  });

  it('looks other MAC notations up under the canonical id', async () => {
    const before = t.app.fastCheckStats.answered;
    for (const id of ['AA-BB-CC-00-00-01', 'aabb.cc00.0001', 'AA:BB:CC:00:00:01']) {
      const fast = await get(base, `/ztp/check/${id}`);
      assert.equal(fast.status, 200);
      assert.equal((JSON.parse(fast.body) as { id: string }).id, 'aa:bb:cc:00:00:01');
    }
    assert.equal(t.app.fastCheckStats.answered - before, 3);
  });

  it('hands everything else to Fastify, which answers as without the lane', async () => {
    const cases: [string, string][] = [
      ['GET', '/ztp/check/aa:bb:cc:00:00:99'], // unknown: 404 problem
      ['GET', '/ztp/check/list'], // reserved word: 400
      ['GET', '/ztp/check/aa:bb:cc:00:00:0g'], // not a MAC ('g'): a valid other id, unknown: 404
      ['GET', '/ztp/check/bad%20id'], // needs decoding: 400
      ['GET', '/ztp/check/aa%3Abb%3Acc%3A00%3A00%3A01'], // %-encoded MAC: 200 from Fastify
      ['GET', '/ztp/check/aa:bb:cc:00:00:01/'], // trailing slash
      ['HEAD', '/ztp/check/aa:bb:cc:00:00:01'],
      ['GET', `/ztp/check/${'a'.repeat(129)}`], // too long: 400
      ['GET', '/ztp/check/'],
    ];
    for (const [method, url] of cases) {
      const answered = t.app.fastCheckStats.answered;
      const live = await get(base, url, {}, method);
      assert.equal(
        t.app.fastCheckStats.answered,
        answered,
        `${method} ${url} was answered by the lane`,
      );
      const ref = await t.app.inject({ method: method as 'GET' | 'HEAD', url });
      assert.equal(live.status, ref.statusCode, `${method} ${url}`);
      assert.equal(live.body, ref.body, `${method} ${url}`);
      assert.equal(live.headers['content-type'], ref.headers['content-type'], `${method} ${url}`);
    }
    const unknown = await get(base, '/ztp/check/aa:bb:cc:00:00:99');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal((JSON.parse(unknown.body) as { code: string }).code, 'device_not_found');
  });

  it('echoes a sane client request id, replaces anything else', async () => {
    const id = 'aa:bb:cc:00:00:01';
    const kept = await get(base, `/ztp/check/${id}`, { 'x-request-id': 'trace-42.a_b' });
    assert.equal(kept.headers['x-request-id'], 'trace-42.a_b');
    const replaced = await get(base, `/ztp/check/${id}`, { 'x-request-id': 'no spaces; please' });
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('counts its answers in /metrics like the route', async () => {
    const before = checkCount(await metrics());
    const answered = t.app.fastCheckStats.answered;
    for (let i = 0; i < 5; i++)
      assert.equal((await get(base, '/ztp/check/aa:bb:cc:00:00:02')).status, 200);
    assert.equal(t.app.fastCheckStats.answered - answered, 5);
    assert.equal(checkCount(await metrics()) - before, 5);
  });
});

describe('lookup fast lane on an engine without synchronous reads', () => {
  let t: TestApp;
  let base: string;

  before(async () => {
    ({ t, base } = await start({}, true));
  });
  after(() => t.close());

  it('answers a registered device and hands bad ids to Fastify', async () => {
    const answered = t.app.fastCheckStats.answered;
    const fast = await get(base, '/ztp/check/AA-BB-CC-00-00-01');
    assert.equal(fast.status, 200);
    assert.equal((JSON.parse(fast.body) as { id: string }).id, 'aa:bb:cc:00:00:01');
    assert.equal(t.app.fastCheckStats.answered - answered, 1);
    for (const [url, status] of [
      ['/ztp/check/list', 400],
      ['/ztp/check/aa:bb:cc:00:00:99', 404],
    ] as const) {
      const res = await get(base, url);
      assert.equal(res.status, status, url);
      assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    }
    assert.equal(t.app.fastCheckStats.answered - answered, 1);
    assert.equal((await get(base, '/healthz')).status, 200);
  });
});

describe('lookup fast lane with a retrieval guard', () => {
  let t: TestApp;
  let base: string;

  before(async () => {
    const tokens = new TokenSet(
      parseTokens(
        `manager:svc:${hashToken('m-token')},device:d1:${hashToken('d-token')}`,
        'test',
        true,
      ),
    );
    ({ t, base } = await start({ guards: buildGuards({ tokens: () => tokens }) }));
  });
  after(() => t.close());

  it('answers an authorised lookup and leaves refusals to Fastify', async () => {
    const id = 'aa:bb:cc:00:00:01';
    let answered = t.app.fastCheckStats.answered;
    const ok = await get(base, `/ztp/check/${id}`, { authorization: 'Bearer m-token' });
    assert.equal(ok.status, 200);
    assert.equal(t.app.fastCheckStats.answered - answered, 1);

    answered = t.app.fastCheckStats.answered;
    const none = await get(base, `/ztp/check/${id}`);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="ztp"');
    const wrongRole = await get(base, `/ztp/check/${id}`, { authorization: 'Bearer d-token' });
    assert.equal(wrongRole.status, 403);
    assert.equal((JSON.parse(wrongRole.body) as { code: string }).code, 'forbidden');
    assert.equal(t.app.fastCheckStats.answered, answered);
  });
});

describe('lookup fast lane logging', () => {
  it('writes the same debug line as the route, nothing at info', async () => {
    for (const level of ['debug', 'info']) {
      const lines: Record<string, unknown>[] = [];
      const stream = { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) };
      const { t, base } = await start({ logger: { level, stream } });
      try {
        const id = 'aa:bb:cc:00:00:03';
        await get(base, `/ztp/check/${id}`, { 'x-request-id': 'lane-1' });
        await get(base, `/ztp/check/${id}?via=fastify`, { 'x-request-id': 'route-1' });
      } finally {
        await t.close();
      }
      const reads = lines.filter((l) => l.msg === 'request' && l.method === 'GET');
      if (level === 'info') {
        assert.deepEqual(reads, []);
        continue;
      }
      const lane = reads.find((l) => l.reqId === 'lane-1');
      const route = reads.find((l) => l.reqId === 'route-1');
      assert.ok(lane && route, JSON.stringify(reads));
      assert.deepEqual(Object.keys(lane).sort(), Object.keys(route).sort());
      assert.equal(lane.status, 200);
      assert.equal(lane.level, 20);
      assert.equal(lane.url, '/ztp/check/aa:bb:cc:00:00:03');
    }
  });
});
