import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { startServe } from './server-process.js';

const root = new URL('../../', import.meta.url).pathname;
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['bin/ztp.mjs', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

describe('ztp CLI', () => {
  it('explains every command and option in --help', () => {
    const top = cli(['--help']);
    assert.equal(top.status, 0);
    for (const c of ['serve', 'register', 'export', 'import', 'token'])
      assert.match(top.stdout, new RegExp(`\\b${c}\\b`));
    const serve = cli(['serve', '--help']);
    assert.equal(serve.status, 0);
    for (const o of ['--host', '--port', '--database', '--manager-url', '--log-level', 'ZTP_PORT'])
      assert.ok(serve.stdout.includes(o), o);
  });

  it('exits 2 with a clear message on a bad option or value', () => {
    const unknown = cli(['serve', '--bogus']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /bogus/);
    const badPort = cli(['serve', '--port', 'eighty']);
    assert.equal(badPort.status, 2);
    assert.match(badPort.stderr, /port/);
    const badEnv = cli(['serve'], { ZTP_MANAGER_URL: 'ftp://x' });
    assert.equal(badEnv.status, 2);
    assert.match(badEnv.stderr, /ZTP_MANAGER_URL/);
    assert.equal(cli(['frobnicate']).status, 2);
  });

  it('refuses a bad manager URL template or secret file at start (exit 2, the reason)', () => {
    const template = cli(['serve', '--manager-url', 'http://m/{mac}']);
    assert.equal(template.status, 2);
    assert.match(template.stderr, /unknown placeholder \{mac\}/);
    const secret = cli(
      ['serve', '--port', '0', '--database', ':memory:', '--manager-url', 'http://m'],
      {
        ZTP_MANAGER_SECRET_FILE: '/nonexistent/ztp-secret',
      },
    );
    assert.equal(secret.status, 2);
    assert.match(secret.stderr, /--manager-secret-file \/nonexistent\/ztp-secret: cannot be read/);
  });
});

describe('ztp serve as a real process', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);

  it('serves the API, drains on SIGTERM and exits 0', async () => {
    const db = join(dir, 'sigterm.db');
    const server = await startServe(['--database', db]);
    const res = await fetch(`${server.url}/ztp/register/AA-BB-CC-DD-EE-01`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ip: '10.0.0.1' }),
    });
    assert.equal(res.status, 201);
    assert.ok(res.headers.get('x-request-id'));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal(await server.stop(), 0);
    assert.ok(
      server.lines.some((l) => l.includes('no --manager-url')),
      'warns that no manager is configured',
    );
    const logLine = server.lines.find((l) => l.includes('"url":"/ztp/register/AA-BB-CC-DD-EE-01"'));
    assert.ok(logLine, 'one JSON log line per request');
    assert.ok((JSON.parse(logLine) as { reqId?: string }).reqId, 'log lines carry the request id');
  });

  it('takes its configuration from the environment', async () => {
    const server = await startServe([], {
      ZTP_DATABASE: join(dir, 'env.db'),
      ZTP_LOG_LEVEL: 'warn',
    });
    await fetch(`${server.url}/healthz`);
    await server.stop();
    assert.ok(
      !server.lines.some((l) => l.includes('"msg":"request"')),
      'info lines are off at warn',
    );
  });

  it('loses nothing that was answered 2xx when killed with SIGKILL under load', async () => {
    const db = join(dir, 'kill.db');
    const server = await startServe(['--database', db, '--log-level', 'warn']);
    const acknowledged = new Set<string>();
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const id = `dev-${w}-${i}`;
        try {
          const res = await fetch(`${server.url}/ztp/register/${id}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ip: '10.0.0.1' }),
          });
          if (res.status === 201) acknowledged.add(id);
        } catch {
          return; // the server is gone
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    while (acknowledged.size < 300) await new Promise((r) => setTimeout(r, 10));
    await server.kill9();
    stop = true;
    await Promise.all(workers);

    const again = await startServe(['--database', db, '--log-level', 'warn']);
    const res = await fetch(`${again.url}/ztp/mng/list`);
    const stored = new Set(((await res.json()) as { hosts: string[] }).hosts);
    await again.stop();
    const lost = [...acknowledged].filter((id) => !stored.has(id));
    assert.deepEqual(
      lost,
      [],
      `${lost.length} of ${acknowledged.size} acknowledged registrations lost`,
    );
  });
});
