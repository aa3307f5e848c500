/**
 * `?token=` on the registration URLs, for devices that cannot send headers: accepted like a
 * bearer token, refused like one, refused when given twice, and never written anywhere — logs,
 * metrics, events, problem documents.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../../src/app.js';
import { DeviceService } from '../../src/devices/service.js';
import { EventBus } from '../../src/events/bus.js';
import { operatorFeatures } from '../../src/operator.js';
import { queryToken } from '../../src/security/device-token.js';
import { loggerOptions } from '../../src/security/logging.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { hashToken } from '../../src/security/tokens.js';
import { json, tempSqliteStore } from '../helpers.js';

const DEVICE = 'ztp_DeviceQueryToken0123456789';
const ADMIN = 'ztp_AdminQueryToken0123456789';
const MANAGER = 'ztp_ManagerQueryToken012345678';
const WRONG = 'ztp_WrongQueryToken0123456789x';

describe('queryToken', () => {
  it('finds ?token= (percent-decoded), undefined without, throws when repeated', () => {
    assert.equal(queryToken('/ztp/register/x'), undefined);
    assert.equal(queryToken('/ztp/register/x?a=1&token=ab%2Bc&b=2'), 'ab+c');
    assert.equal(queryToken('/ztp/register/x?tok%65n=abc'), 'abc');
    assert.equal(queryToken('/ztp/register/x?token'), '');
    assert.equal(queryToken('/ztp/register/x?token=%zz'), '');
    assert.equal(queryToken('/ztp/register/x?device_token=abc'), undefined);
    assert.throws(() => queryToken('/x?token=a&token=a'), { code: 'ambiguous_token' });
  });
});

describe('?token= on the registration URLs', () => {
  const lines: string[] = [];
  const events: string[] = [];
  let app: Awaited<ReturnType<typeof buildApp>>;
  let cleanup: () => Promise<void>;
  before(async () => {
    const store = tempSqliteStore();
    cleanup = store.cleanup;
    const bus = new EventBus();
    bus.subscribe((e) => void events.push(JSON.stringify(e)));
    const service = new DeviceService(store.store.stores, {
      triggersEnabled: false,
      historyLimit: 20,
      events: bus,
    });
    const security = setupSecurity({
      ...SECURITY_OFF,
      tokens: [
        `device:dev:${hashToken(DEVICE)}`,
        `admin:adm:${hashToken(ADMIN)}`,
        `manager:mgr:${hashToken(MANAGER)}`,
      ].join(','),
    });
    app = await buildApp({
      service,
      guards: security.guards,
      logger: loggerOptions('trace', { write: (line) => void lines.push(line) }),
      plugins: [operatorFeatures({ service, events: bus, processMetrics: false }).plugin],
    });
  });
  after(async () => {
    await app.close();
    await cleanup();
  });

  const register = (query: string, headers: Record<string, string> = {}, method = 'POST') =>
    app.inject({
      method: method as 'POST',
      url: `/ztp/register/qt-dev${query}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: 'ip=10.0.0.7',
    });

  it('a device token in ?token= registers, on POST and PUT (admin tokens too)', async () => {
    const a = await register(`?token=${DEVICE}`);
    assert.equal(a.statusCode, 201, a.body);
    const b = await register(`?token=${encodeURIComponent(ADMIN)}`, {}, 'PUT');
    assert.equal(b.statusCode, 200, b.body);
  });

  it('a wrong, malformed or misplaced token: the same 401 as a wrong bearer token', async () => {
    const bearer = await register('', { authorization: `Bearer ${WRONG}` });
    assert.equal(bearer.statusCode, 401);
    for (const query of [`?token=${WRONG}`, '?token=', '?token=a%20b', '?token=%zz']) {
      const res = await register(query);
      assert.equal(res.statusCode, 401, query);
      assert.equal(res.headers['www-authenticate'], bearer.headers['www-authenticate']);
      assert.equal(json(res).detail, json(bearer).detail);
    }
    const missing = await register('');
    assert.equal(missing.statusCode, 401);
    assert.match(String(json(missing).detail), /\?token=/, 'the 401 says where a token may go');
    // A manager token is a known token with the wrong role: 403, as with the header.
    assert.equal((await register(`?token=${MANAGER}`)).statusCode, 403);
  });

  it('repeated, or together with Authorization: 400 ambiguous_token, nothing stored', async () => {
    for (const [query, headers] of [
      [`?token=${DEVICE}&token=${DEVICE}`, {}],
      [`?token=${DEVICE}`, { authorization: `Bearer ${DEVICE}` }],
    ] as const) {
      const res = await app.inject({
        method: 'PUT',
        url: `/ztp/register/qt-twice${query}`,
        headers: { ...headers, 'content-type': 'application/json' },
        payload: '{}',
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(json(res).code, 'ambiguous_token');
    }
    const check = await app.inject({
      url: '/ztp/check/qt-twice',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(check.statusCode, 404);
  });

  it('only the registration group reads it: admin URLs want the header', async () => {
    const res = await app.inject({ url: `/ztp/mng/list?token=${ADMIN}` });
    assert.equal(res.statusCode, 401);
  });

  it('never appears in logs, metrics, events or problem documents', async () => {
    const bodies: string[] = [];
    for (const token of [DEVICE, WRONG]) {
      for (const query of [`?token=${token}`, `?a=1&token=${token}&token=${token}`]) {
        const res = await register(query);
        bodies.push(res.body);
      }
      const bad = await app.inject({
        method: 'POST',
        url: `/ztp/register/qt-dev?token=${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'ip=1&ip=2',
      });
      bodies.push(bad.body);
      assert.equal(bad.statusCode, token === DEVICE ? 400 : 401, bad.body);
      assert.equal(json(bad).instance, '/ztp/register/qt-dev?token=[redacted]');
    }
    const metrics = await app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /register/, 'the registrations were counted');
    const log = lines.join('');
    assert.match(log, /token=\[redacted\]/);
    for (const secret of [DEVICE, WRONG]) {
      assert.ok(!log.includes(secret), 'log');
      assert.ok(!metrics.body.includes(secret), 'metrics');
      assert.ok(!events.join('\n').includes(secret), 'events');
      for (const body of bodies) assert.ok(!body.includes(secret), body);
    }
    assert.ok(events.length > 0, 'events were emitted');
  });
});
