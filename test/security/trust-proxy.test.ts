/**
 * `--trust-proxy`: forwarding headers from the configured peers give the source address (default
 * ip, lastSource, rate-limit key) and the public URL of served scripts; from anyone else they are
 * ignored; garbage from a trusted peer is a 400 with nothing stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { parseTrustProxy } from '../../src/security/trust-proxy.js';
import { json, testApp, type TestApp } from '../helpers.js';

const PROXY = '10.0.0.2';
const STRANGER = '192.0.2.50';

describe('parseTrustProxy', () => {
  it('takes CIDRs and bare addresses, IPv4 and IPv6, IPv4-mapped peers too', () => {
    const trusts = parseTrustProxy(' 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1');
    for (const a of ['10.1.2.3', '::ffff:10.9.9.9', '192.0.2.7', 'fd12::1', '::1'])
      assert.ok(trusts(a), a);
    for (const a of ['11.0.0.1', '192.0.2.8', 'fe80::1', '::2', 'garbage', ''])
      assert.ok(!trusts(a), a);
  });

  it('refuses anything else at start with a ConfigError naming the entry', () => {
    for (const bad of [
      '',
      ',',
      'proxy.example',
      '10.0.0.0/33',
      '10.0.0.0/8/1',
      'fd00::/129',
      '10.0.0.0/x',
    ]) {
      assert.throws(
        () => setupSecurity({ ...SECURITY_OFF, trustProxy: bad }),
        (e) => e instanceof ConfigError && e.message.startsWith('--trust-proxy'),
        bad,
      );
    }
  });
});

describe('requests through a trusted proxy', () => {
  let t: TestApp;
  before(async () => {
    const security = setupSecurity({
      ...SECURITY_OFF,
      trustProxy: '10.0.0.0/8',
      registerRateLimit: { limit: 2, windowMs: 60_000 },
    });
    t = await testApp({ app: { guards: security.guards, trustProxy: security.trustProxy } });
  });
  after(() => t.close());

  const register = (id: string, peer: string, headers: Record<string, string>) =>
    t.app.inject({ method: 'POST', url: `/ztp/register/${id}`, remoteAddress: peer, headers });
  const detail = async (id: string) => {
    const res = await t.app.inject({ url: `/ztp/mng/${id}` });
    return res.statusCode === 200 ? json(res) : undefined;
  };

  it('X-Forwarded-For from a trusted peer: the rightmost untrusted hop is the source', async () => {
    const cases: [string, Record<string, string>, string][] = [
      ['one-hop', { 'x-forwarded-for': '198.51.100.7' }, '198.51.100.7'],
      ['chain', { 'x-forwarded-for': '203.0.113.9, 10.0.0.5' }, '203.0.113.9'],
      // A client's own (forged) entries left of the first untrusted hop are never read.
      [
        'forged-left',
        { 'x-forwarded-for': 'garbage, 1.1.1.1, 203.0.113.10, 10.0.0.5' },
        '203.0.113.10',
      ],
      ['with-port', { 'x-forwarded-for': '203.0.113.11:50123' }, '203.0.113.11'],
      ['ipv6', { 'x-forwarded-for': '[2001:DB8::7]:443' }, '2001:db8::7'],
      [
        'forwarded',
        { forwarded: 'for="[2001:db8::8]:4711";proto=https, for=10.0.0.9' },
        '2001:db8::8',
      ],
    ];
    for (const [id, headers, source] of cases) {
      const res = await register(`tp-${id}`, PROXY, headers);
      assert.equal(res.statusCode, 201, `${id}: ${res.body}`);
      assert.equal(json(res).ip, source, id);
      assert.equal((await detail(`tp-${id}`))?.lastSource, source, id);
    }
    // A self-reported ip stays the device's; the observed source is kept beside it.
    const own = await t.app.inject({
      method: 'PUT',
      url: '/ztp/register/tp-own',
      remoteAddress: PROXY,
      headers: { 'x-forwarded-for': '198.51.100.70', 'content-type': 'application/json' },
      payload: '{"ip":"10.20.30.40"}',
    });
    assert.equal(json(own).ip, '10.20.30.40');
    assert.equal((await detail('tp-own'))?.lastSource, '198.51.100.70');
  });

  it('from anyone else the headers are ignored, garbage included', async () => {
    const cases: Record<string, string>[] = [
      { 'x-forwarded-for': '198.51.100.7' },
      { 'x-forwarded-for': 'garbage', 'x-forwarded-proto': 'gopher' },
      { forwarded: 'for=unknown', 'x-forwarded-for': '1.2.3.4' },
    ];
    for (const [i, headers] of cases.entries()) {
      const peer = `192.0.2.${60 + i}`;
      const res = await register(`tp-stranger-${i}`, peer, headers);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(json(res).ip, peer);
    }
  });

  it('garbage from a trusted peer: 400 invalid_forwarded, nothing stored', async () => {
    const cases: Record<string, string>[] = [
      { 'x-forwarded-for': 'garbage' },
      { 'x-forwarded-for': '198.51.100.7, , 10.0.0.5' },
      { 'x-forwarded-for': '198.51.100.7, 10.0.0.300' },
      { 'x-forwarded-for': 'fe80::1%eth0' },
      { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'ftp' },
      { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-host': "ztp'.example" },
      { forwarded: 'for=unknown' },
      { forwarded: 'proto=https' },
      { forwarded: 'for=198.51.100.7;for=198.51.100.8' },
      { forwarded: 'for=198.51.100.7 junk' },
      { forwarded: 'for=198.51.100.7', 'x-forwarded-for': '198.51.100.7' },
    ];
    for (const [i, headers] of cases.entries()) {
      const res = await register(`tp-bad-${i}`, PROXY, headers);
      assert.equal(res.statusCode, 400, `${JSON.stringify(headers)}: ${res.body}`);
      assert.equal(json(res).code, 'invalid_forwarded');
      assert.equal(await detail(`tp-bad-${i}`), undefined);
    }
  });

  it('the rate-limit key is the forwarded source, not the proxy', async () => {
    const from = (client: string) => register('tp-rate', PROXY, { 'x-forwarded-for': client });
    assert.equal((await from('198.51.100.200')).statusCode, 201);
    assert.equal((await from('198.51.100.200')).statusCode, 200);
    assert.equal((await from('198.51.100.200')).statusCode, 429, 'the third from one client');
    assert.equal((await from('198.51.100.201')).statusCode, 200, 'another client behind the proxy');
  });

  it('X-Forwarded-Proto/-Host (or Forwarded) give the URL the served script embeds', async () => {
    const script = async (peer: string, headers: Record<string, string>) => {
      const res = await t.app.inject({
        url: '/ztp/client.sh',
        remoteAddress: peer,
        headers: { host: '10.0.0.1:8080', ...headers },
      });
      return /\nZTP_SERVED_FROM='([^']*)'\n/.exec(res.body)?.[1];
    };
    const forwarded = {
      'x-forwarded-proto': 'HTTPS',
      'x-forwarded-host': 'ztp.example.com, 10.0.0.1',
    };
    assert.equal(await script(PROXY, forwarded), 'https://ztp.example.com');
    assert.equal(
      await script(PROXY, { forwarded: 'for=198.51.100.7;proto=https;host="ztp.example:8443"' }),
      'https://ztp.example:8443',
    );
    assert.equal(await script(STRANGER, forwarded), 'http://10.0.0.1:8080');
  });
});

describe('without --trust-proxy', () => {
  it('forwarding headers are ignored from every peer', async () => {
    const t = await testApp();
    try {
      const res = await t.app.inject({
        method: 'POST',
        url: '/ztp/register/no-proxy',
        remoteAddress: '127.0.0.1',
        headers: { 'x-forwarded-for': '198.51.100.7', forwarded: 'for=garbage' },
      });
      assert.equal(json(res).ip, '127.0.0.1');
    } finally {
      await t.close();
    }
  });
});
