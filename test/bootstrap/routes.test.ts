/**
 * GET /ztp/bootstrap/ and /ztp/bootstrap/{platform}: the listing, the scripts, registration by
 * identity headers (the exact header sets ONIE, SONiC and Cumulus send), HEAD, tokens, and bad
 * input refused with nothing stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PLATFORMS } from '../../src/bootstrap/platforms.js';
import { buildGuards } from '../../src/security/guards.js';
import { RateLimiter } from '../../src/security/rate-limit.js';
import { hashToken, parseTokens, TokenSet } from '../../src/security/tokens.js';
import type { RegistryEvent } from '../../src/events/bus.js';
import { getJson, run, serve, type Served } from '../client/support.js';
import { json, testApp, type TestApp } from '../helpers.js';
import { CUMULUS_HEADERS, ONIE_HEADERS, SONIC_HEADERS } from './fixtures.js';

const HOST = { host: 'ztp.example:8080' };

async function deviceCount(t: TestApp): Promise<number> {
  return t.service.queries.count();
}

describe('GET /ztp/bootstrap/', () => {
  let t: TestApp;
  before(async () => (t = await testApp()));
  after(() => t.close());

  it('lists every platform with its URL and content type', async () => {
    const res = await t.app.inject({ url: '/ztp/bootstrap/', headers: HOST });
    assert.equal(res.statusCode, 200);
    const { platforms } = json<{ platforms: { name: string; url: string; contentType: string }[] }>(
      res,
    );
    assert.deepEqual(
      platforms.map((p) => p.name),
      PLATFORMS.map((p) => p.name),
    );
    for (const name of ['sh', 'python', 'onie', 'sonic', 'cumulus', 'nxos', 'eos', 'iosxe'])
      assert.ok(
        platforms.some((p) => p.name === name),
        name,
      );
    assert.equal(platforms[0]!.url, 'http://ztp.example:8080/ztp/bootstrap/sh');
    const noSlash = await t.app.inject({ url: '/ztp/bootstrap', headers: HOST });
    assert.equal(noSlash.body, res.body);
  });

  it('serves each platform with its content type; an unknown one is 404 unknown_platform', async () => {
    for (const p of PLATFORMS) {
      const res = await t.app.inject({ url: `/ztp/bootstrap/${p.name}`, headers: HOST });
      assert.equal(res.statusCode, 200, p.name);
      assert.equal(res.headers['content-type'], p.contentType);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.ok(res.body.includes('http://ztp.example:8080'), p.name);
    }
    const res = await t.app.inject({ url: '/ztp/bootstrap/windows', headers: HOST });
    assert.equal(res.statusCode, 404);
    assert.equal(json(res).code, 'unknown_platform');
    assert.match(String(json(res).detail), /platforms: sh, python, onie/);
  });

  it('refuses an unusable Host header instead of writing it into a script', async () => {
    const res = await t.app.inject({ url: '/ztp/bootstrap/onie', headers: { host: "a'b" } });
    assert.equal(res.statusCode, 400);
    assert.equal(json(res).code, 'invalid_url');
  });
});

describe('registration by identity headers', () => {
  let t: TestApp;
  const events: RegistryEvent[] = [];
  before(async () => {
    t = await testApp();
    t.events.subscribe((e) => events.push(e));
  });
  after(() => t.close());

  const cases = [
    {
      name: 'ONIE',
      platform: 'onie',
      headers: ONIE_HEADERS,
      id: '14:02:ec:2d:f0:00',
      aliases: [{ type: 'serial', value: 'TW68HF500N' }],
    },
    {
      name: 'SONiC',
      platform: 'sonic',
      headers: SONIC_HEADERS,
      id: '00:e0:ec:38:50:fb',
      aliases: [{ type: 'serial', value: 'E1031B2F035A17GD020' }],
    },
    {
      name: 'Cumulus',
      platform: 'cumulus',
      headers: CUMULUS_HEADERS,
      id: '44:38:39:ff:40:94',
      aliases: [
        { type: 'mac', value: '44:38:39:ff:00:00' },
        { type: 'serial', value: 'XYZ123004' },
      ],
    },
  ];
  for (const c of cases) {
    it(`${c.name}'s fetch registers its base MAC with the source address, like any registration`, async () => {
      events.length = 0;
      const res = await t.app.inject({
        url: `/ztp/bootstrap/${c.platform}`,
        headers: { ...HOST, ...c.headers },
        remoteAddress: '10.1.2.3',
      });
      assert.equal(res.statusCode, 200, res.body);
      const device = await t.service.get(c.id);
      assert.equal(device.ip, '10.1.2.3');
      assert.equal(device.lastSource, '10.1.2.3');
      assert.deepEqual(
        events.map((e) => e.type),
        ['registered'],
      );
      const detail = await t.service.detail(c.id);
      assert.equal(detail.history.length, 1);
      // The serial number and the other MACs are kept with it: the device is found by them too.
      assert.deepEqual(
        [...detail.aliases].sort((a, b) => a.value.localeCompare(b.value)),
        [...c.aliases].sort((a, b) => a.value.localeCompare(b.value)),
      );
      assert.equal((await t.service.get(c.aliases.at(-1)!.value)).id, c.id);
    });
  }

  it('the served sh script registers under the same id as the headers did', async () => {
    const res = await t.app.inject({
      url: '/ztp/bootstrap/cumulus',
      headers: { ...HOST, ...CUMULUS_HEADERS },
    });
    assert.match(res.body, /\|\| ZTP_ID='44:38:39:ff:40:94'\n/);
  });

  it('a fetch without identity headers registers nothing; HEAD never does', async () => {
    const before_ = await deviceCount(t);
    const plain = await t.app.inject({ url: '/ztp/bootstrap/onie', headers: HOST });
    assert.equal(plain.statusCode, 200);
    const head = await t.app.inject({
      method: 'HEAD',
      url: '/ztp/bootstrap/onie',
      headers: { ...HOST, ...ONIE_HEADERS, 'onie-eth-addr': '02:00:00:00:00:99' },
    });
    assert.equal(head.statusCode, 200);
    assert.equal(await deviceCount(t), before_);
    // HEAD answers what GET would for malformed headers, still storing nothing.
    const badHead = await t.app.inject({
      method: 'HEAD',
      url: '/ztp/bootstrap/onie',
      headers: { ...HOST, ...ONIE_HEADERS, 'onie-eth-addr': 'nope' },
    });
    assert.equal(badHead.statusCode, 400);
  });

  it('malformed identity headers: 400 invalid_identity_header naming the header, nothing stored', async () => {
    const before_ = await deviceCount(t);
    const bad: [Record<string, string>, string][] = [
      [{ ...ONIE_HEADERS, 'onie-eth-addr': '14:02:EC:2D:F0' }, 'ONIE-ETH-ADDR'],
      [{ ...SONIC_HEADERS, 'serial-number': 'A\tB' }, 'SERIAL-NUMBER'],
      [{ ...CUMULUS_HEADERS, 'cumulus-serial': 'S'.repeat(129) }, 'CUMULUS-SERIAL'],
      [{ ...CUMULUS_HEADERS, 'cumulus-base-mac': '' }, 'CUMULUS-BASE-MAC'],
    ];
    for (const [headers, name] of bad) {
      const res = await t.app.inject({
        url: '/ztp/bootstrap/sh',
        headers: { ...HOST, ...headers },
      });
      assert.equal(res.statusCode, 400, name);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(json(res).code, 'invalid_identity_header');
      assert.equal(json(res).header, name);
    }
    assert.equal(await deviceCount(t), before_);
  });
});

describe('tokens', () => {
  const DEVICE = 'ztp_device-token';
  const ADMIN = 'ztp_admin-token';
  let t: TestApp;
  before(async () => {
    const tokens = new TokenSet(
      parseTokens(`device:sw:${hashToken(DEVICE)}\nadmin:ops:${hashToken(ADMIN)}`, 'test'),
    );
    t = await testApp({ app: { guards: buildGuards({ tokens: () => tokens }) } });
  });
  after(() => t.close());

  it('the scripts stay public; a valid ?token= is written into the script', async () => {
    const open = await t.app.inject({ url: '/ztp/bootstrap/sonic', headers: HOST });
    assert.equal(open.statusCode, 200);
    assert.ok(!open.body.includes('token='));
    const res = await t.app.inject({ url: `/ztp/bootstrap/sonic?token=${DEVICE}`, headers: HOST });
    assert.equal(res.statusCode, 200);
    assert.match(
      res.body,
      /"source": "http:\/\/ztp\.example:8080\/ztp\/bootstrap\/sh\?token=ztp_device-token"/,
    );
    const sh = await t.app.inject({ url: `/ztp/bootstrap/sh?token=${DEVICE}`, headers: HOST });
    assert.match(sh.body, /\|\| ZTP_TOKEN='ztp_device-token'\n/);
  });

  it('a wrong, malformed or repeated token is a 4xx problem and is not echoed', async () => {
    for (const [query, status, code] of [
      ['token=ztp_wrong', 401, 'unauthorized'],
      ['token=bad%20token', 401, 'unauthorized'],
      // As on the registration URL: a repeated token is ambiguous, an empty one is not valid.
      [`token=${DEVICE}&token=${DEVICE}`, 400, 'ambiguous_token'],
      ['token=', 401, 'unauthorized'],
    ] as const) {
      const res = await t.app.inject({ url: `/ztp/bootstrap/sh?${query}`, headers: HOST });
      assert.equal(res.statusCode, status, query);
      assert.equal(json(res).code, code, query);
      assert.ok(!res.body.includes('ztp_wrong') && !res.body.includes(DEVICE), query);
    }
    const both = await t.app.inject({
      url: `/ztp/bootstrap/sh?token=${DEVICE}`,
      headers: { ...HOST, authorization: `Bearer ${DEVICE}` },
    });
    assert.equal(both.statusCode, 400);
    assert.equal(json(both).code, 'ambiguous_token');
  });

  it('with tokens on, a fetch with identity headers registers only with a device token', async () => {
    const url = '/ztp/bootstrap/onie';
    const anonymous = await t.app.inject({ url, headers: { ...HOST, ...ONIE_HEADERS } });
    assert.equal(anonymous.statusCode, 401);
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer/);
    await assert.rejects(t.service.get('14:02:ec:2d:f0:00'), { code: 'device_not_found' });
    const withToken = await t.app.inject({
      url: `${url}?token=${DEVICE}`,
      headers: { ...HOST, ...ONIE_HEADERS },
    });
    assert.equal(withToken.statusCode, 200);
    assert.match(withToken.body, /ZTP_TOKEN='ztp_device-token'/);
    assert.equal((await t.service.get('14:02:ec:2d:f0:00')).id, '14:02:ec:2d:f0:00');
  });
});

describe('rate limit', () => {
  it('a registering fetch counts against --register-rate-limit like a registration', async () => {
    const t = await testApp({
      app: { guards: buildGuards({ registerRateLimiter: new RateLimiter(1, 60_000) }) },
    });
    try {
      const fetch = () =>
        t.app.inject({ url: '/ztp/bootstrap/sonic', headers: { ...HOST, ...SONIC_HEADERS } });
      assert.equal((await fetch()).statusCode, 200);
      const limited = await fetch();
      assert.equal(limited.statusCode, 429);
      assert.equal(json(limited).code, 'rate_limited');
      // Without identity headers or a token the script is served regardless.
      const plain = await t.app.inject({ url: '/ztp/bootstrap/sonic', headers: HOST });
      assert.equal(plain.statusCode, 200);
    } finally {
      await t.close();
    }
  });
});

describe('against a real server', () => {
  let server: Served;
  before(async () => (server = await serve()));
  after(() => server.stop());

  it('Cumulus fetches its script with its headers and runs it: one device, registered twice', async () => {
    const headers = Object.entries(CUMULUS_HEADERS).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const fetched = await run('curl', ['-fsS', ...headers, `${server.url}/ztp/bootstrap/cumulus`]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stdout, /^#!\/bin\/sh\n# CUMULUS-AUTOPROVISIONING\n/);
    const ran = await run('sh', ['-s', '--', '--json'], { input: fetched.stdout });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal((JSON.parse(ran.stdout) as { id: string }).id, '44:38:39:ff:40:94');
    const list = await getJson(`${server.url}/ztp/mng/list/`);
    assert.deepEqual(list.body, { hosts: ['44:38:39:ff:40:94'] });
    const detail = (await getJson(`${server.url}/ztp/mng/44:38:39:ff:40:94`)).body as {
      registrations: number;
    };
    assert.equal(detail.registrations, 2);
  });

  it('curl /ztp/bootstrap/sh | sh registers this machine as /ztp/client.sh does', async () => {
    const piped = await run('sh', [
      '-c',
      `curl -fsS ${server.url}/ztp/bootstrap/sh | sh -s -- --json`,
    ]);
    assert.equal(piped.code, 0, piped.stderr);
    const viaClientSh = await run('sh', [
      '-c',
      `curl -fsS ${server.url}/ztp/client.sh | sh -s -- --json`,
    ]);
    assert.equal(
      (JSON.parse(piped.stdout) as { id: string }).id,
      (JSON.parse(viaClientSh.stdout) as { id: string }).id,
    );
  });
});
