/**
 * Role-based API tokens: the tokens file format, every API group × every role (and none, and a
 * bad token) through the real app, reload, the start-up warning, and `ztp token`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp, type AppOptions } from '../../src/app.js';
import { ConfigError } from '../../src/errors.js';
import { DeviceService } from '../../src/devices/service.js';
import { EventBus } from '../../src/events/bus.js';
import { operatorFeatures } from '../../src/operator.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { hashToken, parseTokens, TokenSet } from '../../src/security/tokens.js';
import { startServe } from '../e2e/server-process.js';
import { json, tempDir, tempSqliteStore, testApp, type TestApp } from '../helpers.js';

const root = new URL('../../', import.meta.url).pathname;

/** The real app with the operator features (console data, live events, /metrics) plugged in. */
async function withOperator(app: Partial<AppOptions>): Promise<TestApp> {
  const { store, cleanup } = tempSqliteStore();
  const events = new EventBus();
  const service = new DeviceService(store.stores, {
    triggersEnabled: false,
    historyLimit: 20,
    events,
  });
  const features = operatorFeatures({ service, events, processMetrics: false });
  const built = await buildApp({ service, logger: false, plugins: [features.plugin], ...app });
  return {
    app: built,
    service,
    store,
    events,
    close: async () => {
      await built.close();
      await cleanup();
    },
  };
}

const TOKENS = {
  device: 'ztp_device-token-0123456789',
  manager: 'ztp_manager-token-0123456789',
  admin: 'ztp_admin-token-0123456789',
};

describe('tokens file format', () => {
  it('reads role:name:sha256 lines with comments and blank lines', () => {
    const entries = parseTokens(
      `# ztp tokens\n\nadmin:alice:${hashToken('a')}  # Alice\nmanager:svc-mgr:${hashToken('b').toUpperCase()}\n`,
      'tokens',
    );
    assert.deepEqual(
      entries.map((e) => [e.role, e.name, e.hash.toString('hex')]),
      [
        ['admin', 'alice', hashToken('a')],
        ['manager', 'svc-mgr', hashToken('b')],
      ],
    );
  });

  it('names the line of a malformed entry and refuses plaintext tokens', () => {
    assert.throws(
      () => parseTokens(`admin:a:${hashToken('x')}\nroot:b:${hashToken('y')}`, 'f'),
      (e) => e instanceof ConfigError && e.message.startsWith("f:2: role 'root'"),
    );
    assert.throws(() => parseTokens('admin:alice:ztp_secret', 'f'), /64-hex-digit SHA-256/);
    assert.throws(() => parseTokens(`admin:al ice:${hashToken('x')}`, 'f'), /token name/);
    assert.throws(() => parseTokens('admin:alice', 'f'), /expected role:name:sha256hex/);
  });

  it('separates environment entries by commas', () => {
    const set = new TokenSet(
      parseTokens(`device:d:${hashToken('d')}, admin:a:${hashToken('a')}`, 'ZTP_TOKENS', true),
    );
    assert.equal(set.size, 2);
    assert.equal(set.find('a')?.name, 'a');
    assert.equal(set.find('d')?.role, 'device');
    assert.equal(set.find('nope'), undefined);
  });

  it('refuses the same token twice', () => {
    assert.throws(
      () =>
        new TokenSet(
          parseTokens(`admin:a:${hashToken('x')},device:b:${hashToken('x')}`, 'e', true),
        ),
      /configured twice/,
    );
  });
});

describe('token roles × API groups', () => {
  let t: TestApp;
  let file: string;
  let security: ReturnType<typeof setupSecurity>;
  const dir = tempDir('ztp-tokens-');

  before(async () => {
    file = join(dir.dir, 'tokens');
    writeFileSync(
      file,
      `device:site-1:${hashToken(TOKENS.device)}\nmanager:svc:${hashToken(TOKENS.manager)}\n`,
    );
    security = setupSecurity({
      ...SECURITY_OFF,
      tokensFile: file,
      tokens: `admin:alice:${hashToken(TOKENS.admin)}`,
    });
    t = await withOperator({ guards: security.guards });
    await t.service.register('aa:bb:cc:dd:ee:01', { ip: '10.0.0.1' }, '127.0.0.1');
  });
  after(async () => {
    await t.close();
    dir.cleanup();
  });

  const auth = (who: keyof typeof TOKENS | 'none' | 'bad' | 'malformed') =>
    who === 'none'
      ? {}
      : who === 'bad'
        ? { authorization: 'Bearer ztp_not-a-configured-token' }
        : who === 'malformed'
          ? { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }
          : { authorization: `Bearer ${TOKENS[who]}` };

  const ROUTES: { group: string; method: 'GET' | 'PUT'; url: string; body?: unknown }[] = [
    { group: 'registration', method: 'PUT', url: '/ztp/register/aa:bb:cc:dd:ee:02', body: {} },
    { group: 'retrieval', method: 'GET', url: '/ztp/check/aa:bb:cc:dd:ee:01' },
    { group: 'management', method: 'GET', url: '/ztp/mng/list' },
    { group: 'management', method: 'GET', url: '/ztp/mng/aa:bb:cc:dd:ee:01' },
    { group: 'management', method: 'GET', url: '/ztp/mng/devices' },
    { group: 'management', method: 'GET', url: '/ztp/mng/stats' },
    { group: 'management', method: 'GET', url: '/metrics' },
  ];
  // expected class per group and credential
  const EXPECTED: Record<string, Record<string, number>> = {
    registration: { none: 401, bad: 401, malformed: 401, device: 2, manager: 403, admin: 2 },
    retrieval: { none: 401, bad: 401, malformed: 401, device: 403, manager: 2, admin: 2 },
    management: { none: 401, bad: 401, malformed: 401, device: 403, manager: 403, admin: 2 },
  };

  for (const route of ROUTES) {
    for (const who of ['none', 'bad', 'malformed', 'device', 'manager', 'admin'] as const) {
      const expected = EXPECTED[route.group]![who]!;
      it(`${route.method} ${route.url} as ${who} → ${expected === 2 ? '2xx' : expected}`, async () => {
        const before = await t.store.countDevices();
        const res = await t.app.inject({
          method: route.method,
          url: route.url,
          headers: auth(who),
          ...(route.body === undefined ? {} : { payload: route.body as object }),
        });
        if (expected === 2) {
          assert.equal(Math.floor(res.statusCode / 100), 2, res.body);
          return;
        }
        assert.equal(res.statusCode, expected, res.body);
        assert.match(res.headers['content-type'] as string, /^application\/problem\+json/);
        const body = json<{ code: string; status: number }>(res);
        assert.equal(body.code, expected === 401 ? 'unauthorized' : 'forbidden');
        if (expected === 401) {
          assert.match(res.headers['www-authenticate'] as string, /^Bearer realm="ztp"/);
          if (who !== 'none')
            assert.match(res.headers['www-authenticate'] as string, /error="invalid_token"/);
        }
        // a refused request changes nothing
        assert.equal(await t.store.countDevices(), before);
      });
    }
  }

  it('keeps the probes, docs, OpenAPI document, console page and client script public', async () => {
    for (const url of [
      ...['/healthz', '/readyz', '/openapi.json', '/docs/', '/', '/ztp/client.sh'],
      '/ztp/client.py',
    ]) {
      const res = await t.app.inject({ method: 'GET', url });
      assert.ok(![401, 403].includes(res.statusCode), `${url}: ${res.statusCode}`);
    }
  });

  it('records who registered as the principal (token name)', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/ztp/register/aa:bb:cc:dd:ee:03',
      headers: auth('device'),
      payload: {},
    });
    assert.equal(res.statusCode, 201);
    const { guards } = security;
    const seen = await guards.registration!(
      { headers: auth('device'), raw: { socket: {} }, ip: '127.0.0.1', params: {} } as never,
      'registration',
    );
    assert.deepEqual(seen, { role: 'device', subject: 'site-1' });
  });

  it('re-reads the tokens file on reload: a removed token stops working, a new one works', async () => {
    const newToken = 'ztp_rotated-manager-token-42';
    writeFileSync(file, `manager:svc2:${hashToken(newToken)}\n`);
    const log = { info: () => undefined, error: () => undefined } as never;
    security.reload(undefined, log);
    const check = (token: string) =>
      t.app.inject({
        method: 'GET',
        url: '/ztp/check/aa:bb:cc:dd:ee:01',
        headers: { authorization: `Bearer ${token}` },
      });
    assert.equal((await check(TOKENS.manager)).statusCode, 401);
    assert.equal((await check(newToken)).statusCode, 200);
    assert.equal((await check(TOKENS.admin)).statusCode, 200, 'environment tokens stay');
    // a malformed file is refused and the current tokens stay
    writeFileSync(file, 'garbage\n');
    let logged = '';
    security.reload(undefined, {
      info: () => undefined,
      error: (_o: unknown, msg: string) => (logged = msg),
    } as never);
    assert.match(logged, /reload failed/);
    assert.equal((await check(newToken)).statusCode, 200);
  });
});

describe('ztp token', () => {
  const cli = (args: string[], input?: string) =>
    spawnSync(process.execPath, ['bin/ztp.mjs', 'token', ...args], {
      cwd: root,
      encoding: 'utf8',
      input,
      timeout: 10_000,
    });

  it('create prints a new token and the tokens-file line that accepts it', async () => {
    const r = cli(['create', '--role', 'admin', '--name', 'alice']);
    assert.equal(r.status, 0, r.stderr);
    const [token, line] = r.stdout.trim().split('\n') as [string, string];
    assert.match(token, /^ztp_[A-Za-z0-9_-]{43}$/);
    assert.equal(line, `admin:alice:${hashToken(token)}`);
    assert.ok(!line.includes(token));
    const again = cli(['create', '--role', 'admin', '--name', 'alice']);
    assert.notEqual(again.stdout.split('\n')[0], token, 'each token is new');

    const security = setupSecurity({ ...SECURITY_OFF, tokens: line });
    const t = await testApp({ app: { guards: security.guards } });
    try {
      const res = await t.app.inject({
        url: '/ztp/mng/list',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.statusCode, 200);
    } finally {
      await t.close();
    }
  });

  it('create --tokens-file appends the line to a private file', () => {
    const dir = tempDir('ztp-token-cli-');
    try {
      const file = join(dir.dir, 'tokens');
      assert.equal(
        cli(['create', '--role', 'device', '--name', 'site-1', '--tokens-file', file]).status,
        0,
      );
      assert.equal(
        cli(['create', '--role', 'manager', '--name', 'svc', '--tokens-file', file]).status,
        0,
      );
      const entries = parseTokens(readFileSync(file, 'utf8'), file);
      assert.deepEqual(
        entries.map((e) => `${e.role}:${e.name}`),
        ['device:site-1', 'manager:svc'],
      );
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      dir.cleanup();
    }
  });

  it('hash prints the line of a token given on standard input', () => {
    const r = cli(['hash', '--role', 'manager', '--name', 'svc'], 'ztp_existing-token\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `manager:svc:${hashToken('ztp_existing-token')}`);
  });

  it('rejects an unknown role or a bad name with exit code 2', () => {
    const role = cli(['create', '--role', 'root', '--name', 'x']);
    assert.equal(role.status, 2);
    assert.match(role.stderr, /--role must be one of device, manager, admin/);
    assert.equal(cli(['create', '--role', 'admin', '--name', 'a b']).status, 2);
    assert.equal(cli(['create', '--role', 'admin']).status, 2);
  });
});

describe('start-up', () => {
  it('warns clearly when no tokens are configured, and not when they are', async () => {
    const dir = tempDir('ztp-warn-');
    try {
      const open = await startServe(['--database', join(dir.dir, 'a.db')]);
      await open.stop();
      assert.ok(
        open.lines.some((l) => l.includes('no API tokens configured') && l.includes('"level":40')),
        open.lines.join('\n'),
      );
      const closed = await startServe(['--database', join(dir.dir, 'b.db')], {
        ZTP_TOKENS: `admin:alice:${hashToken(TOKENS.admin)}`,
      });
      const res = await fetch(`${closed.url}/ztp/mng/list`);
      assert.equal(res.status, 401);
      await closed.stop();
      assert.ok(!closed.lines.some((l) => l.includes('no API tokens configured')));
    } finally {
      dir.cleanup();
    }
  });
});
