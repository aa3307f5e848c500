/**
 * The device client end to end: `node bin/ztp.mjs register` and the bundled dist/ztp-client.mjs
 * against a real `ztp serve` on loopback.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { BIN, BUNDLE, freePort, getJson, machineMac, run, serve, type Served } from './support.js';

const register = (args: string[], opts?: Parameters<typeof run>[2]) =>
  run(process.execPath, [BIN, 'register', ...args], opts);
const bundled = (args: string[], opts?: Parameters<typeof run>[2]) =>
  run(process.execPath, [BUNDLE, ...args], opts);

interface Detail {
  id: string;
  ip: string;
  name: string;
  registrations: number;
  lastSource: string;
}

describe('ztp register against a real server on 127.0.0.1', () => {
  let server: Served;
  before(async () => {
    server = await serve();
  });
  after(async () => {
    await server.stop();
  });

  it('registers with the MAC and the address this machine has, no name unless given', async (t) => {
    const mac = machineMac();
    if (mac === undefined) {
      t.skip('this machine has no default route: no MAC to expect');
      return;
    }
    const first = await register(['--server', server.url]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `registered ${mac} as 127.0.0.1 (created)\n`);
    const again = await register(['--server', server.url, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), {
      id: mac,
      ip: '127.0.0.1',
      name: '',
      userdata: '',
    });
    const check = await getJson(`${server.url}/ztp/mng/${mac}`);
    const detail = check.body as Detail;
    assert.equal(check.status, 200);
    assert.equal(detail.registrations, 2);
    assert.equal(detail.lastSource, '127.0.0.1', 'the registered ip is where we came from');
  });

  it('--id-source machine-id registers /etc/machine-id', async (t) => {
    const file = ['/etc/machine-id', '/var/lib/dbus/machine-id'].find((f) => {
      try {
        return /^[0-9a-f]{32}$/.test(readFileSync(f, 'utf8').trim());
      } catch {
        return false;
      }
    });
    if (file === undefined) {
      t.skip('this machine has no machine-id');
      return;
    }
    const expected = readFileSync(file, 'utf8').trim();
    const r = await register([
      '--server',
      server.url,
      '--id-source',
      'machine-id',
      '--name',
      'm1',
      '--userdata',
      'rack 4',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const check = await getJson(`${server.url}/ztp/check/${expected}`);
    assert.equal(check.status, 200);
    assert.deepEqual(check.body, { id: expected, ip: '127.0.0.1', name: 'm1', userdata: 'rack 4' });
  });

  it('--id-source dmi-uuid registers the product UUID, or exits 3 naming the file', async (t) => {
    let uuid: string | undefined;
    try {
      uuid = readFileSync('/sys/class/dmi/id/product_uuid', 'utf8').trim().toLowerCase();
    } catch {
      uuid = undefined;
    }
    const r = await register(['--server', server.url, '--id-source', 'dmi-uuid', '--json']);
    if (uuid === undefined) {
      t.diagnostic('no readable /sys/class/dmi/id/product_uuid here: checking the failure path');
      assert.equal(r.code, 3, r.stderr);
      assert.match(
        r.stderr,
        /\/sys\/class\/dmi\/id\/product_uuid: (not present|permission denied)/,
      );
      assert.equal(r.stdout, '');
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as Detail).id, uuid);
  });

  it('--id-source cpu registers the CPU serial, or exits 3 naming every source tried', async (t) => {
    const serial = /^Serial\s*:\s*(\S+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    const r = await register(['--server', server.url, '--id-source', 'cpu', '--json']);
    if (serial === undefined || /^0+$/.test(serial)) {
      t.diagnostic('this CPU exposes no serial in /proc/cpuinfo: checking the failure path');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /\/proc\/cpuinfo: no Serial line/);
      assert.match(r.stderr, /serial-number/);
      assert.match(r.stderr, /CPUID leaf 3/);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as Detail).id, serial);
  });

  it('--id with any MAC notation registers the canonical id', async () => {
    const r = await register([
      '--server',
      server.url,
      '--id',
      'AA-BB-CC-00-11-22',
      '--ip',
      '10.9.8.7',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'registered aa:bb:cc:00:11:22 as 10.9.8.7 (created)\n');
  });

  it('a wrong path on the real server is rejected at once (exit 4, code and detail)', async () => {
    const r = await register(['--server', `${server.url}/nope`, '--id', 'x1', '--wait', '30s']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /rejected the registration \(404 route_not_found\): no route PUT/);
    assert.doesNotMatch(r.stderr, /retrying/);
  });

  it('the bundled single file registers the same device the same way', async () => {
    const viaCli = await register(['--server', server.url, '--json', '--name', 'same']);
    const viaBundle = await bundled(['--server', server.url, '--json', '--name', 'same']);
    assert.equal(viaBundle.code, 0, viaBundle.stderr);
    assert.equal(viaBundle.stdout, viaCli.stdout);
    const dryCli = await register(['--server', server.url, '--dry-run', '--json']);
    const dryBundle = await bundled(['--server', server.url, '--dry-run', '--json']);
    assert.equal(dryBundle.stdout, dryCli.stdout);
    // The bundle is self-contained: it runs from a directory without node_modules.
    assert.ok(existsSync(BUNDLE));
    assert.doesNotMatch(readFileSync(BUNDLE, 'utf8'), /from ?["'](?!node:)[^"']+["']/);
  });
});

describe('the register path of the main CLI', () => {
  it('loads no package (no fastify, no database driver): node builtins and client chunks only', async () => {
    const trace = new URL('./fixtures/trace-loads.mjs', import.meta.url).pathname;
    const r = await run(process.execPath, [
      ...['--import', trace, BIN, 'register', '--dry-run', '--server', 'http://127.0.0.1:9'],
      ...['--id', 'x1', '--ip', '10.0.0.1'],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const loaded = [...r.stderr.matchAll(/^load: (\S+)$/gm)].map((m) => m[1]!);
    assert.ok(
      loaded.some((u) => u.includes('/dist/chunks/')),
      'the client chunk was traced',
    );
    const packages = loaded.filter(
      (u) => !u.startsWith('node:') && !u.includes('/dist/') && !u.endsWith('/bin/ztp.mjs'),
    );
    assert.deepEqual(packages, []);
  });
});

describe('ztp register over IPv6', () => {
  it('an IPv6 server gets the IPv6 source address', async (t) => {
    let server: Served;
    try {
      server = await serve({ host: '::1' });
    } catch (e) {
      t.skip(`cannot listen on ::1 here: ${String(e).slice(0, 100)}`);
      return;
    }
    try {
      const r = await register(['--server', server.url, '--id', 'v6-device', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as Detail).ip, '::1');
      const sh = await run('sh', [
        ...[new URL('../../src/client/ztp-client.sh', import.meta.url).pathname],
        ...['--server', server.url, '--id', 'v6-device', '--json'],
      ]);
      assert.equal(sh.code, 0, sh.stderr);
      assert.equal(sh.stdout, r.stdout, 'the sh client finds the same IPv6 source address');
    } finally {
      await server.stop();
    }
  });
});

describe('ztp register waiting for the server', () => {
  it('a server started after the client: the client waits and succeeds', async () => {
    const port = await freePort();
    const client = register([
      '--server',
      `http://127.0.0.1:${port}`,
      '--id',
      'late-server',
      '--wait',
      '30s',
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    const server = await serve({ port });
    try {
      const r = await client;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /attempt 1 failed: connect ECONNREFUSED/);
      assert.equal(r.stdout, 'registered late-server as 127.0.0.1 (created)\n');
      assert.equal((await getJson(`${server.url}/ztp/check/late-server`)).status, 200);
    } finally {
      await server.stop();
    }
  });

  it('a server that never comes up: --wait 2 gives up with exit 5 and a clear message', async () => {
    const port = await freePort();
    const r = await register(['--server', `http://127.0.0.1:${port}`, '--wait', '2s'], {
      killAfterMs: 30_000,
    });
    assert.equal(r.code, 5, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `gave up after 2\\.\\ds and \\d+ attempts: http://127\\.0\\.0\\.1:${port} did not accept the registration \\(last error: connect ECONNREFUSED`,
      ),
    );
    assert.ok(r.ms >= 1900, `it waited (${r.ms} ms)`);
    assert.ok(r.ms < 20_000, `it gave up instead of waiting the default 300 s (${r.ms} ms)`);
  });
});

describe('a server answering 400', () => {
  let stub: Server;
  let url: string;
  const hits: string[] = [];
  before(async () => {
    // A server stricter than this client (e.g. a newer policy) refusing the registration.
    stub = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(400, { 'content-type': 'application/problem+json' });
      res.end(
        JSON.stringify({
          type: 'https://github.com/ztp/ztp#error-invalid-body',
          title: 'Bad Request',
          status: 400,
          detail: 'name must be registered in the inventory first',
          code: 'invalid_body',
        }),
      );
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
  });
  after(() => stub.close());

  for (const [what, client] of [
    ['ztp register', register],
    ['dist/ztp-client.mjs', bundled],
  ] as const) {
    it(`${what} exits 4 at once, printing the detail and code`, async () => {
      hits.length = 0;
      const r = await client(['--server', url, '--id', 'dev-400', '--wait', '60s']);
      assert.equal(r.code, 4, r.stderr);
      assert.match(
        r.stderr,
        /rejected the registration \(400 invalid_body\): name must be registered in the inventory first/,
      );
      assert.deepEqual(hits, ['PUT /ztp/register/dev-400'], 'exactly one attempt');
    });
  }
});
