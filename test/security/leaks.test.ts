/**
 * Nothing secret or internal leaves the server: tokens, Authorization headers and database
 * passwords never reach the logs (the logs are read back), responses never carry stack traces
 * or file paths, and the documentation pages carry security headers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ZtpError } from '../../src/errors.js';
import { loggerOptions } from '../../src/security/logging.js';
import { SECURITY_OFF, setupSecurity } from '../../src/security/setup.js';
import { hashToken } from '../../src/security/tokens.js';
import { startServe } from '../e2e/server-process.js';
import { json, tempDir, testApp } from '../helpers.js';

const root = new URL('../../', import.meta.url).pathname;

const ADMIN = 'ztp_Adm1nS3cretTokenValue';
const WRONG = 'ztp_WrongGuessTokenValue99';
const PASSWORD = 'Pg-Pa55word-Never-Logged';

describe('logs', () => {
  it('redact tokens and Authorization wherever a log object carries them', async () => {
    const lines: string[] = [];
    const security = setupSecurity({ ...SECURITY_OFF, tokens: `admin:alice:${hashToken(ADMIN)}` });
    const t = await testApp({
      app: {
        logger: loggerOptions('trace', { write: (line) => void lines.push(line) }),
        guards: security.guards,
        plugins: [
          // What a careless debugging line would log: whole headers, a config with secrets.
          async (app) => {
            app.addHook('onRequest', async (request) => {
              request.log.debug({ req: { headers: request.headers } }, 'headers (req)');
              request.log.debug({ headers: request.headers }, 'headers');
              request.log.debug(
                { config: { token: ADMIN, password: PASSWORD }, authorization: WRONG },
                'config',
              );
            });
          },
        ],
      },
    });
    try {
      for (const token of [ADMIN, WRONG]) {
        for (const url of ['/ztp/mng/list', '/ztp/register/aa:bb:cc:dd:ee:01', '/nope']) {
          await t.app.inject({
            method: url.includes('register') ? 'PUT' : 'GET',
            url,
            headers: { authorization: `Bearer ${token}`, cookie: `session=${token}` },
            ...(url.includes('register') ? { payload: {} } : {}),
          });
        }
      }
    } finally {
      await t.close();
    }
    const log = lines.join('');
    assert.ok(lines.length > 10, 'the requests were logged');
    assert.match(log, /\[redacted\]/);
    for (const secret of [ADMIN, WRONG, PASSWORD])
      assert.ok(!log.includes(secret), `${secret} appears in the log`);
  });

  it('of the real server contain no token nor database password', async () => {
    const dir = tempDir('ztp-leak-');
    try {
      const server = await startServe(
        ['--database', join(dir.dir, 'a.db'), '--log-level', 'trace'],
        {
          ZTP_TOKENS: `admin:alice:${hashToken(ADMIN)}`,
        },
      );
      for (const token of [ADMIN, WRONG]) {
        await fetch(`${server.url}/ztp/mng/list`, {
          headers: { authorization: `Bearer ${token}` },
        });
        await fetch(`${server.url}/ztp/register/x?token=1`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{"ip":',
        });
      }
      assert.equal(await server.stop(), 0);
      const log = server.lines.join('\n');
      assert.match(log, /"status":401/);
      for (const secret of [ADMIN, WRONG]) assert.ok(!log.includes(secret));

      // A PostgreSQL URL with a password that cannot connect: whatever is printed, no password.
      const out = await new Promise<string>((resolve) => {
        const proc = spawn(
          process.execPath,
          [
            ...['bin/ztp.mjs', 'serve', '--port', '0', '--host', '127.0.0.1'],
            ...['--database', `postgres://ztp:${PASSWORD}@127.0.0.1:1/ztp`],
            ...['--database-connect-timeout', '1s', '--log-level', 'trace'],
          ],
          { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let text = '';
        proc.stdout.on('data', (d: Buffer) => (text += d.toString()));
        proc.stderr.on('data', (d: Buffer) => (text += d.toString()));
        const timer = setTimeout(() => proc.kill('SIGTERM'), 8000);
        proc.on('exit', () => {
          clearTimeout(timer);
          resolve(text);
        });
      });
      assert.ok(out.length > 0, 'the server said something');
      assert.ok(!out.includes(PASSWORD), out);
    } finally {
      dir.cleanup();
    }
  });
});

describe('responses', () => {
  it('never show a stack trace, an internal message or a file path', async () => {
    const t = await testApp({
      app: {
        plugins: [
          async (app) => {
            app.get('/boom', () => {
              throw new Error(`ENOENT: open '${root}src/secret.ts' at Object.<anonymous>`);
            });
            app.get('/boom-typed', () => {
              throw new TypeError('Cannot read properties of undefined (reading "x")');
            });
          },
        ],
      },
    });
    try {
      for (const url of ['/boom', '/boom-typed']) {
        const res = await t.app.inject({ url });
        assert.equal(res.statusCode, 500);
        assert.equal(json(res).code, 'internal_error');
        assert.doesNotMatch(res.body, /ENOENT|secret\.ts|Cannot read|\/work\/|node_modules|\bat /);
      }
      const badJson = await t.app.inject({
        method: 'PUT',
        url: '/ztp/register/x',
        headers: { 'content-type': 'application/json' },
        payload: '{"ip": ',
      });
      assert.equal(badJson.statusCode, 400);
      assert.doesNotMatch(badJson.body, /\/work\/|node_modules|\bat [\w.]+ \(/);
    } finally {
      await t.close();
    }
  });

  it('keep a problem document for domain errors thrown by guards (no leaking of internals)', async () => {
    const t = await testApp({
      app: {
        guards: {
          retrieval: () => Promise.reject(new ZtpError('forbidden', 'not you')),
        },
      },
    });
    try {
      const res = await t.app.inject({ url: '/ztp/check/x' });
      assert.equal(res.statusCode, 403);
      assert.deepEqual(Object.keys(json(res)).sort(), [
        'code',
        'detail',
        'instance',
        'status',
        'title',
        'type',
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('documentation pages', () => {
  it('carry a content security policy and anti-framing, anti-sniffing headers', async () => {
    const t = await testApp();
    try {
      const page = await t.app.inject({ url: '/docs/' });
      assert.equal(page.statusCode, 200);
      const csp = page.headers['content-security-policy']!;
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /object-src 'none'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /upgrade-insecure-requests/, 'would break the page over plain HTTP');
      assert.equal(page.headers['x-content-type-options'], 'nosniff');
      assert.equal(page.headers['x-frame-options'], 'DENY');
      assert.equal(page.headers['referrer-policy'], 'no-referrer');
      // the page's own script is still served, under the same policy
      const init = await t.app.inject({ url: '/docs/static/swagger-initializer.js' });
      assert.equal(init.statusCode, 200);
      assert.equal(init.headers['x-content-type-options'], 'nosniff');
      assert.match(init.body, /"validatorUrl":null|validatorUrl: ?null/);
    } finally {
      await t.close();
    }
  });
});
