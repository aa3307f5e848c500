/**
 * Abuse limits: the registration rate limit (429 + Retry-After, recovery, bounded memory), and
 * the slow-client timeouts and header size limit of a real listener.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { request as undiciRequest } from 'undici';
import { parseRate } from '../../src/config.js';
import { RateLimiter, sourceKey } from '../../src/security/rate-limit.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { generateToken, tokenLine } from '../../src/security/tokens.js';
import { eventually, json, testApp } from '../helpers.js';

describe('rate limiter', () => {
  it('allows N per window per key, then says when to retry, and refills', () => {
    let now = 0;
    const limiter = new RateLimiter(3, 1000, { now: () => now });
    for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('a'), { ok: true });
    const refused = limiter.take('a');
    assert.equal(refused.ok, false);
    assert.ok('retryAfterMs' in refused && refused.retryAfterMs > 0);
    assert.ok(refused.retryAfterMs <= 334, 'one token comes back after a third of the window');
    assert.deepEqual(limiter.take('b'), { ok: true }, 'another key has its own bucket');
    now += 340;
    assert.deepEqual(limiter.take('a'), { ok: true });
    assert.equal(limiter.take('a').ok, false);
    now += 10_000;
    for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('a'), { ok: true }, 'full again');
    assert.equal(limiter.take('a').ok, false, 'never more than N at once');
  });

  it('tracks a bounded number of keys', () => {
    const limiter = new RateLimiter(1, 60_000, { maxKeys: 100 });
    for (let i = 0; i < 5000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(limiter.size, 100);
    // the most recent keys are still limited
    assert.equal(limiter.take('10.0.19.135').ok, false);
  });

  it('keys IPv4 by address and IPv6 by /64', () => {
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
    assert.notEqual(sourceKey('2001:db8:1:3::1'), sourceKey('2001:db8:1:2::1'));
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey(undefined), 'unknown');
  });

  it('parses N/window', () => {
    assert.deepEqual(parseRate('60/1m'), { limit: 60, windowMs: 60_000 });
    assert.deepEqual(parseRate('5/s'), { limit: 5, windowMs: 1000 });
    assert.deepEqual(parseRate('10'), { limit: 10, windowMs: 1000 });
    assert.throws(() => parseRate('0/1m'), /at least 1/);
    assert.throws(() => parseRate('many'), /N\/window/);
  });
});

describe('--register-rate-limit', () => {
  it('answers 429 with Retry-After beyond the limit, stores nothing, and recovers', async () => {
    const security = setupSecurity({
      ...SECURITY_OFF,
      registerRateLimit: { limit: 2, windowMs: 1000 },
    });
    const t = await testApp({ app: { guards: security.guards } });
    try {
      const register = (id: string, remoteAddress = '192.0.2.1') =>
        t.app.inject({
          method: 'PUT',
          url: `/ztp/register/${id}`,
          payload: { ip: '10.0.0.1' },
          remoteAddress,
        });
      assert.equal((await register('dev-1')).statusCode, 201);
      assert.equal((await register('dev-1')).statusCode, 200);
      const limited = await register('dev-2');
      assert.equal(limited.statusCode, 429);
      assert.equal(limited.headers['retry-after'], '1');
      assert.equal(json(limited).code, 'rate_limited');
      assert.match(limited.headers['content-type'] as string, /^application\/problem\+json/);
      assert.equal((await t.app.inject({ url: '/ztp/check/dev-2' })).statusCode, 404);
      // other sources and other API groups are not affected
      assert.equal((await register('dev-3', '192.0.2.2')).statusCode, 201);
      assert.equal((await t.app.inject({ url: '/ztp/check/dev-1' })).statusCode, 200);
      // and the limited source recovers once its bucket refills
      await eventually(
        async () => (await register('dev-2')).statusCode === 201,
        3000,
        'the rate limit to recover',
      );
    } finally {
      await t.close();
    }
  });

  it('is spent only by authenticated requests: refused ones cannot lock a site out', async () => {
    const deviceToken = generateToken();
    const managerToken = generateToken();
    const security = setupSecurity({
      ...SECURITY_OFF,
      tokens: `${tokenLine('device', 'site-1', deviceToken)},${tokenLine('manager', 'mgr', managerToken)}`,
      registerRateLimit: { limit: 3, windowMs: 60_000 },
    });
    const t = await testApp({ app: { guards: security.guards } });
    try {
      // One host behind the site's NAT: no token, a wrong token, a token of the wrong role.
      const register = (id: string, authorization?: string) =>
        t.app.inject({
          method: 'PUT',
          url: `/ztp/register/${id}`,
          payload: { ip: '10.0.0.1' },
          remoteAddress: '192.0.2.1',
          headers: authorization === undefined ? {} : { authorization },
        });
      for (let i = 0; i < 10; i++) {
        assert.equal((await register('intruder')).statusCode, 401);
        assert.equal((await register('intruder', `Bearer ${generateToken()}`)).statusCode, 401);
        assert.equal((await register('intruder', `Bearer ${managerToken}`)).statusCode, 403);
      }
      // The site's devices still have their whole budget, and no more.
      for (let i = 1; i <= 3; i++)
        assert.equal((await register(`dev-${i}`, `Bearer ${deviceToken}`)).statusCode, 201);
      const limited = await register('dev-4', `Bearer ${deviceToken}`);
      assert.equal(limited.statusCode, 429);
      assert.equal(json(limited).code, 'rate_limited');
      // Over the limit, a request without credentials is still told to authenticate.
      assert.equal((await register('intruder')).statusCode, 401);
    } finally {
      await t.close();
    }
  });

  it('is off by default', async () => {
    const security = setupSecurity(SECURITY_OFF);
    assert.equal(security.guards.registration, undefined);
    const t = await testApp({ app: { guards: security.guards } });
    try {
      for (let i = 0; i < 50; i++) {
        const res = await t.app.inject({ method: 'PUT', url: `/ztp/register/d-${i}`, payload: {} });
        assert.equal(res.statusCode, 201);
      }
    } finally {
      await t.close();
    }
  });
});

/** Reads what the server sends until it closes the connection (bounded by `timeoutMs`). */
async function untilClosed(socket: Socket, timeoutMs: number): Promise<string> {
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  const timer = setTimeout(
    () => socket.destroy(new Error('the server kept the connection')),
    timeoutMs,
  );
  try {
    await once(socket, 'close');
  } finally {
    clearTimeout(timer);
  }
  if (socket.errored) throw socket.errored;
  return received;
}

describe('slow clients and large headers (real listener)', () => {
  it('closes a connection whose headers or body arrive too slowly, and keeps serving others', async () => {
    const t = await testApp({ app: { limits: { headersTimeout: 500, requestTimeout: 1000 } } });
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const address = t.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;

      // slowloris: headers that never finish
      const slowHeaders = connect(port, '127.0.0.1');
      await once(slowHeaders, 'connect');
      slowHeaders.write('PUT /ztp/register/slow HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n');
      const headersReply = await untilClosed(slowHeaders, 8000);
      assert.ok(headersReply === '' || headersReply.startsWith('HTTP/1.1 408'), headersReply);

      // a body that never finishes
      const slowBody = connect(port, '127.0.0.1');
      await once(slowBody, 'connect');
      slowBody.write(
        'PUT /ztp/register/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ip":',
      );
      const bodyReply = await untilClosed(slowBody, 8000);
      assert.ok(!bodyReply.startsWith('HTTP/1.1 2'), bodyReply);
      assert.equal((await t.app.inject({ url: '/ztp/check/slow' })).statusCode, 404);

      const ok = await fetch(`http://127.0.0.1:${port}/healthz`);
      assert.equal(ok.status, 200);
    } finally {
      await t.close();
    }
  });

  it('answers 431 to request headers over the limit', async () => {
    const t = await testApp();
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const address = t.app.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
      const reply = await untilClosed(socket, 8000);
      assert.match(reply, /^HTTP\/1\.1 431/);
    } finally {
      await t.close();
    }
  });
});

describe('a body over the limit (real listener)', () => {
  const listening = async (t: Awaited<ReturnType<typeof testApp>>) => {
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  };
  const bigRegistration = () =>
    JSON.stringify({ ip: '10.0.0.1', userdata: 'x'.repeat(4 * 1024 * 1024) });

  it('answers 413 to a client that writes its whole 4 MiB body before reading', async () => {
    const t = await testApp();
    try {
      const port = await listening(t);
      const body = bigRegistration();
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      // Like many HTTP libraries: the answer is read only once the request is written. The
      // server answers after the headers; had it closed at once, this write would fail (EPIPE).
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.write(
          'PUT /ztp/register/big-0 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${body.length}\r\n\r\n${body}`,
          (err) => (err ? reject(err) : resolve()),
        );
      });
      const reply = await untilClosed(socket, 8000);
      assert.match(reply, /^HTTP\/1\.1 413 /);
      assert.match(reply, /content-type: application\/problem\+json/i);
      assert.match(reply, /"code":"body_too_large"/);
    } finally {
      await t.close();
    }
  });

  it('reaches fetch and undici request as a 413 problem, with or without Content-Length', async () => {
    const t = await testApp();
    try {
      const port = await listening(t);
      const res = await fetch(`http://127.0.0.1:${port}/ztp/register/big-1`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: bigRegistration(),
      });
      assert.equal(res.status, 413);
      assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(((await res.json()) as { code: string }).code, 'body_too_large');

      // Chunked: Fastify reads up to the limit, then answers.
      const body = bigRegistration();
      const chunks = function* () {
        for (let at = 0; at < body.length; at += 64 * 1024) yield body.slice(at, at + 64 * 1024);
      };
      const chunked = await undiciRequest(`http://127.0.0.1:${port}/ztp/register/big-2`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: Readable.from(chunks()),
      });
      assert.equal(chunked.statusCode, 413);
      assert.equal(((await chunked.body.json()) as { code: string }).code, 'body_too_large');
      assert.equal(await t.store.countDevices(), 0);
    } finally {
      await t.close();
    }
  });

  const bodyOfOneGiB =
    'PUT /ztp/register/big-3 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${1024 * 1024 * 1024}\r\n\r\n`;

  it('drains the rest of the body only so long, then closes', async () => {
    const t = await testApp({ app: { limits: { lingerTimeout: 300 } } });
    try {
      const stalled = connect(await listening(t), '127.0.0.1');
      await once(stalled, 'connect');
      stalled.write(bodyOfOneGiB); // and nothing more
      assert.match(await untilClosed(stalled, 8000), /^HTTP\/1\.1 413 /);
    } finally {
      await t.close();
    }
  });

  it('drains the rest of the body only so much, then closes', async () => {
    const t = await testApp({
      app: { limits: { lingerTimeout: 60_000, lingerBytes: 256 * 1024 } },
    });
    try {
      const flooding = connect(await listening(t), '127.0.0.1');
      await once(flooding, 'connect');
      flooding.on('error', () => undefined); // reset by the server: that is the point
      let received = '';
      flooding.on('data', (d: Buffer) => (received += d.toString('latin1')));
      flooding.write(bodyOfOneGiB);
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const flood = () => {
        while (!flooding.destroyed && flooding.write(chunk));
      };
      flooding.on('drain', flood);
      flood();
      await eventually(() => flooding.destroyed, 8000, 'the server to close the connection');
      assert.match(received, /^HTTP\/1\.1 413 /);
    } finally {
      await t.close();
    }
  });
});
