/**
 * The Python client served at GET /ztp/client.py, run under real interpreters through pyenv
 * (2.7, 3.6 and the newest installed, side by side) against a real `ztp serve` on loopback, and
 * against a small recording server where the test needs to see or shape the raw exchange. Id
 * detection reads fixtures through the client's test-only root (ZTP_PY_TEST_ROOT).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLIENT_OPTIONS, EXIT_CODE_HELP } from '../../src/client/options.js';
import { PYTHON_CLIENT } from '../../src/client/python-script.js';
import { hashToken } from '../../src/security/tokens.js';
import { tempDir } from '../helpers.js';
import {
  assertServedScript,
  BUNDLE,
  clientEnv,
  clientPythons,
  freePort,
  getJson,
  ROOT,
  run,
  serve,
  type Served,
} from './support.js';

const SOURCE = join(ROOT, 'src/client/ztp_client.py');
const FIXTURES = join(ROOT, 'test/client/fixtures');
const tmp = tempDir('ztp-py-client-');
after(() => tmp.cleanup());

const { found: PYTHONS, missing } = clientPythons();
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** A directory standing in for / (the client's ZTP_PY_TEST_ROOT), holding `files`. */
function fakeRoot(name: string, files: Record<string, string | Buffer>): string {
  const root = join(tmp.dir, 'roots', name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');

/** A box whose default routes are eth0 (metric 100) and wlan0 (600), as in the fixture. */
function boxFiles(eth0Mac: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    '/proc/net/route': fixture('proc-net-route'),
    '/sys/class/net/eth0/address': `${eth0Mac}\n`,
    '/sys/class/net/eth0/addr_assign_type': '0\n',
    '/sys/class/net/eth0/flags': '0x1003\n',
    '/sys/class/net/wlan0/address': '3c:52:82:99:99:99\n',
    '/sys/class/net/wlan0/addr_assign_type': '0\n',
    '/sys/class/net/wlan0/flags': '0x1003\n',
    ...extra,
  };
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

/** A server that records every request; answers come from `answers`, then a 201 record. */
async function recorder(): Promise<{
  url: string;
  seen: Seen[];
  answers: Answer[];
  close(): Promise<void>;
}> {
  const seen: Seen[] = [];
  const answers: Answer[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const id = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
      const sent = JSON.parse(body || '{}') as Record<string, string>;
      const a = answers.shift() ?? {
        status: 201,
        body: JSON.stringify({ id, ip: sent.ip, name: sent.name ?? '', userdata: '' }),
      };
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    answers,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('python interpreters', () => {
  it('2.7, 3.6 and the newest Python 3 are installed through pyenv', (t) => {
    if (missing.length === 0) return;
    const message = `Python ${missing.join(', ')} not installed under pyenv (PYENV_ROOT/versions): the Python client cannot be proven there`;
    if (inCi) assert.fail(message);
    t.skip(message);
  });
});

describe('GET /ztp/client.py', () => {
  it('serves the script generated from src/client/ztp_client.py (npm run gen:client-py)', () => {
    assert.equal(PYTHON_CLIENT, readFileSync(SOURCE, 'utf8'));
  });

  it('is a Python script with the URL it was fetched from filled in, not behind auth', async () => {
    await assertServedScript('/ztp/client.py', {
      contentType: /^text\/x-python/,
      shebang: '#!/usr/bin/env python',
      servedFrom: (url) => `ZTP_SERVED_FROM = '${url}'`,
      unsafeHost: "x'; import os #",
    });
  });

  it('knows every option, variable and exit code of `ztp register`', () => {
    for (const o of CLIENT_OPTIONS) {
      assert.ok(PYTHON_CLIENT.includes(`'${o.flag}'`), `python client takes --${o.flag}`);
      if (o.env !== undefined) assert.ok(PYTHON_CLIENT.includes(`'${o.env}'`), o.env);
    }
    for (const [code] of EXIT_CODE_HELP) {
      assert.match(PYTHON_CLIENT, new RegExp(`\\n  ${code}  `), `--help explains exit ${code}`);
    }
  });
});

describe('the Python client against a real server', { concurrency: true }, () => {
  let server: Served;
  let guarded: Served;
  let script: string;
  const DEVICE_TOKEN = 'ztp_py-device-token-0123456789';
  before(async () => {
    [server, guarded] = await Promise.all([
      serve(),
      serve({ args: ['--tokens', `device:py-site:${hashToken(DEVICE_TOKEN)}`] }),
    ]);
    // Fetched the way a device does it: the URL it came from is filled in.
    const res = await fetch(`${server.url}/ztp/client.py`);
    assert.equal(res.status, 200);
    script = join(tmp.dir, 'ztp_client.py');
    writeFileSync(script, await res.text());
  });
  after(async () => {
    await Promise.all([server.stop(), guarded.stop()]);
  });

  PYTHONS.forEach((p, index) => {
    const tag = `py${p.version.replace(/\./g, '')}`;
    const mac = `3c:52:82:00:00:${String(10 + index)}`;
    const box = fakeRoot(`${tag}-box`, boxFiles(mac));
    const py = (
      args: string[],
      opts: { env?: Record<string, string>; root?: string; input?: string; ms?: number } = {},
    ) =>
      run(p.path, [script, ...args], {
        env: clientEnv({ ZTP_PY_TEST_ROOT: opts.root ?? box, ...opts.env }),
        ...(opts.input === undefined ? {} : { input: opts.input }),
        killAfterMs: opts.ms ?? 60_000,
      });
    const plan = async (args: string[], root?: string) => {
      const r = await py(['--dry-run', '--json', '--wait', '0', ...args], root ? { root } : {});
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as {
        url: string;
        body: Record<string, string>;
        id: string;
        idFrom: string;
        authorization: string | null;
      };
    };

    // One interpreter's tests run in order; the interpreters run side by side.
    describe(`Python ${p.version}`, { concurrency: 1 }, () => {
      it('registers the MAC of the default-route interface with the served URL: created, then updated', async () => {
        const first = await py([]);
        assert.equal(first.code, 0, first.stderr);
        assert.equal(first.stdout, `registered ${mac} as 127.0.0.1 (created)\n`);
        const again = await py(['--json']);
        assert.equal(again.code, 0, again.stderr);
        const record = { id: mac, ip: '127.0.0.1', name: '', userdata: '' };
        assert.equal(again.stdout, `${JSON.stringify(record)}\n`);
        const check = await getJson(`${server.url}/ztp/mng/${mac}`);
        assert.equal(check.status, 200);
        const detail = check.body as { registrations: number; lastSource: string };
        assert.equal(detail.registrations, 2);
        assert.equal(detail.lastSource, '127.0.0.1');
      });

      it('sends name and userdata byte for byte when given, and they are stored', async () => {
        const file = join(tmp.dir, `${tag}-userdata.txt`);
        const text = 'rack "4"\tslot\\2\r\nÜmlaut ✓\n\n';
        writeFileSync(file, text);
        const id = `${tag}-named`;
        const r = await py(['--id', id, '--name', 'n "q" ✓', '--userdata-file', file, '--json']);
        assert.equal(r.code, 0, r.stderr);
        const record = { id, ip: '127.0.0.1', name: 'n "q" ✓', userdata: text };
        assert.equal(r.stdout, `${JSON.stringify(record)}\n`, 'printed as JSON.stringify does');
        assert.deepEqual((await getJson(`${server.url}/ztp/check/${id}`)).body, record);
      });

      it('id sources from fixtures: machine-id, cpu serial, device-tree serial, DMI UUID', async () => {
        const mid = fakeRoot(`${tag}-mid`, { '/etc/machine-id': `${'B'.repeat(32)}\n` });
        assert.deepEqual(
          (({ id, idFrom }) => ({ id, idFrom }))(await plan(['--id-source', 'machine-id'], mid)),
          { id: 'b'.repeat(32), idFrom: 'machine-id from /etc/machine-id' },
        );
        const pi = fakeRoot(`${tag}-pi`, { '/proc/cpuinfo': fixture('cpuinfo-raspberry-pi') });
        const cpu = await plan(['--id-source', 'cpu'], pi);
        assert.equal(cpu.id, '00000000a1b2c3d4');
        assert.equal(cpu.idFrom, 'cpu serial from /proc/cpuinfo');
        const dt = fakeRoot(`${tag}-dt`, {
          '/proc/cpuinfo': fixture('cpuinfo-zero-serial'),
          '/sys/firmware/devicetree/base/serial-number': 'XB7-00412\u0000',
        });
        assert.equal((await plan(['--id-source', 'cpu'], dt)).id, 'XB7-00412');
        const dmi = fakeRoot(`${tag}-dmi`, {
          '/sys/class/dmi/id/product_uuid': '4C4C4544-0042-3510-8052-B4C04F4E4D32\n',
        });
        const uuid = await plan(['--id-source', 'dmi-uuid'], dmi);
        assert.equal(uuid.id, '4c4c4544-0042-3510-8052-b4c04f4e4d32');
        assert.equal(uuid.url, `${server.url}/ztp/register/${uuid.id}`);
      });

      it('an id source that gives nothing usable exits 3 naming every place tried', async () => {
        const cases: [string, Record<string, string>, RegExp][] = [
          [
            'machine-id',
            { '/etc/machine-id': 'uninitialized\n' },
            /^ztp_client\.py: cannot find the machine-id id: no machine-id found; tried: \/etc\/machine-id: uninitialized \(first boot\); \/var\/lib\/dbus\/machine-id: not present\n$/,
          ],
          [
            'cpu',
            { '/proc/cpuinfo': fixture('cpuinfo-x86') },
            /cannot find the cpu id: this platform exposes no CPU serial number; tried: \/proc\/cpuinfo: no Serial line; \/sys\/firmware\/devicetree\/base\/serial-number: not present; x86 processor serial number \(CPUID leaf 3\): not offered by this CPU \(no pn flag\)/,
          ],
          [
            'dmi-uuid',
            { '/sys/class/dmi/id/product_uuid': '03000200-0400-0500-0006-000700080009\n' },
            /cannot find the dmi-uuid id: no DMI product UUID; tried: \/sys\/class\/dmi\/id\/product_uuid: 03000200-0400-0500-0006-000700080009 is a firmware placeholder, not unique/,
          ],
        ];
        for (const [source, files, message] of cases) {
          const r = await py(['--id-source', source], {
            root: fakeRoot(`${tag}-no-${source}`, files),
          });
          assert.equal(r.code, 3, `${source}: ${r.stderr}`);
          assert.match(r.stderr, message);
          assert.equal(r.stdout, '');
        }
      });

      it('never takes a random, multicast or missing MAC; without `ip` it reads /proc alone', async () => {
        const random = fakeRoot(
          `${tag}-random`,
          boxFiles(mac, { '/sys/class/net/eth0/addr_assign_type': '1\n' }),
        );
        const next = await plan([], random);
        assert.equal(next.id, '3c:52:82:99:99:99');
        assert.equal(next.idFrom, 'mac of wlan0 (default route; the server is on loopback)');
        const none = fakeRoot(
          `${tag}-none`,
          boxFiles('00:00:00:00:00:00', { '/sys/class/net/wlan0/address': '01:00:5e:00:00:01\n' }),
        );
        const r = await py(['--wait', '10s'], { root: none });
        assert.equal(r.code, 3, r.stderr);
        assert.equal(
          r.stderr,
          'ztp_client.py: cannot find the device id: the server is on loopback and no default-route interface has a usable MAC address; tried: eth0: all-zero address (no hardware address); wlan0: multicast address\n',
        );
        // No `ip` command on PATH: the same device from /proc/net/route and /sys.
        const noIp = await run(p.path, [script, '--dry-run', '--json'], {
          env: clientEnv({ ZTP_PY_TEST_ROOT: box, PATH: join(tmp.dir, 'empty-path') }),
        });
        assert.equal(noIp.code, 0, noIp.stderr);
        assert.equal((JSON.parse(noIp.stdout) as { id: string }).id, mac);
      });

      it('a server beyond this box: the MAC of the interface routing to it, by /proc/net/route', async (t) => {
        // A dry run: connecting a UDP socket and reading routes sends no packet. Here the default
        // route is eth0's and 192.0.2.0/24 wlan0's: the longest prefix wins.
        const routes = [
          'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT',
          'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
          'wlan0\t000200C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0',
        ];
        const root = fakeRoot(
          `${tag}-lpm`,
          boxFiles(mac, { '/proc/net/route': `${routes.join('\n')}\n` }),
        );
        const r = await run(
          p.path,
          [script, '--server', 'http://192.0.2.50:8080', '--dry-run', '--wait', '0'],
          {
            env: clientEnv({ ZTP_PY_TEST_ROOT: root, PATH: join(tmp.dir, 'empty-path') }),
          },
        );
        if (r.code === 5 && r.stderr.includes('network not ready')) {
          t.skip('this machine has no route to 192.0.2.50 at all');
          return;
        }
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /^PUT http:\/\/192\.0\.2\.50:8080\/ztp\/register\/3c:52:82:99:99:99\n/,
        );
        assert.match(
          r.stdout,
          /\(dry run: nothing sent; id is the mac of wlan0 \(route to the server\)\)\n$/,
        );
      });

      it('--id in colon, hyphen, dotted and bare 12-hex notation is one canonical MAC', async () => {
        for (const given of [
          'AA-BB-CC-00-11-22',
          'aabb.cc00.1122',
          'AABBCC001122',
          'aa:bb:cc:00:11:22',
        ]) {
          const r = await plan(['--id', given]);
          assert.equal(r.id, 'aa:bb:cc:00:11:22', given);
          assert.equal(r.url, `${server.url}/ztp/register/aa:bb:cc:00:11:22`);
        }
      });

      it('usage errors exit 2 before anything is sent', async () => {
        for (const args of [
          ['--id', 'a b'],
          ['--id', '..'],
          ['--id', 'LIST'],
          ['--id-source', 'serial'],
          ['--ip', '1.2.3'],
          ['--ip', 'fe80::1%eth0'],
          ['--wait', 'soon'],
          ['--wait', '60'],
          ['--timeout', '50ms'],
          ['--bogus', 'x'],
          ['--id', 'x', '--id-source', 'cpu'],
          ['--server', 'ftp://x'],
          ['--ca-file', '/etc/hosts'],
          ['--name', 'a\u0007b'],
          ['--userdata', 'x'.repeat(64 * 1024 + 1)],
          ['--token-file', '/nonexistent/token'],
        ]) {
          const r = await py(args);
          assert.equal(r.code, 2, `${args.join(' ').slice(0, 60)}: ${r.stderr}`);
          assert.match(r.stderr, /Run 'ztp_client\.py --help' for the options\.\n$/);
        }
        const bare = await py(['--wait', '60']);
        assert.match(bare.stderr, /--wait: '60' has no unit: write e\.g\. 60s/);
        const help = await py(['--help']);
        assert.equal(help.code, 0);
        assert.match(
          help.stdout,
          /--name NAME {2}\(env ZTP_NAME\)\n {6}Device name\. Sent only when given/,
        );
        assert.match(help.stdout, /Exit codes:[\s\S]*\n {2}5 {2}gave up waiting/);
      });

      it('a 4xx from the real server exits 4 at once with its code and detail', async () => {
        const nul = join(tmp.dir, `${tag}-nul.txt`);
        writeFileSync(nul, 'a\u0000b');
        const r = await py(['--id', `${tag}-nul`, '--userdata-file', nul, '--wait', '60s']);
        assert.equal(r.code, 4, r.stderr);
        assert.match(
          r.stderr,
          /rejected the registration \(400 invalid_body\): userdata must not contain NUL/,
        );
        assert.doesNotMatch(r.stderr, /retrying/);
        const path = await py(['--server', `${server.url}/nope`, '--id', 'x1', '--wait', '60s']);
        assert.equal(path.code, 4, path.stderr);
        assert.match(
          path.stderr,
          /rejected the registration \(404 route_not_found\): no route PUT/,
        );
      });

      it('the token goes as Authorization: Bearer; a wrong or missing one is exit 4', async () => {
        const tokenFile = join(tmp.dir, `${tag}-token`);
        writeFileSync(tokenFile, `${DEVICE_TOKEN}\n`);
        const id = `${tag}-tok`;
        const ok = await py(['--server', guarded.url, '--id', id, '--token-file', tokenFile]);
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(ok.stdout, `registered ${id} as 127.0.0.1 (created)\n`);
        const env = await py(['--server', guarded.url, '--id', id], {
          env: { ZTP_TOKEN: DEVICE_TOKEN },
        });
        assert.equal(env.stdout, `registered ${id} as 127.0.0.1 (updated)\n`);
        for (const args of [['--token', 'ztp_wrong'], []]) {
          const r = await py(['--server', guarded.url, '--id', id, '--wait', '30s', ...args]);
          assert.equal(r.code, 4, r.stderr);
          assert.match(r.stderr, /rejected the registration \(401 unauthorized\)/);
        }
        const rec = await recorder();
        try {
          await py(['--server', rec.url, '--id', id, '--token', DEVICE_TOKEN]);
          assert.equal(rec.seen[0]!.headers.authorization, `Bearer ${DEVICE_TOKEN}`);
        } finally {
          await rec.close();
        }
      });

      it('name and userdata are sent only when given (flag or environment)', async () => {
        const rec = await recorder();
        try {
          const bodies: unknown[] = [];
          const send = async (args: string[], env: Record<string, string> = {}) => {
            const r = await py(['--server', rec.url, ...args], { env });
            assert.equal(r.code, 0, r.stderr);
            bodies.push(JSON.parse(rec.seen.at(-1)!.body));
          };
          await send([]);
          await send([], { ZTP_NAME: 'env-name', ZTP_USERDATA: 'env ud' });
          await send(['--name', '', '--userdata', ''], { ZTP_NAME: 'ignored' });
          await send([], { ZTP_NAME: '', ZTP_USERDATA: '' });
          // Python 3.6 under the C locale decodes arguments as ASCII: UTF-8 must survive it.
          await send(['--name', 'Ümlaut ✓'], { LC_ALL: 'C', LANG: 'C' });
          assert.deepEqual(bodies, [
            { ip: '127.0.0.1' },
            { ip: '127.0.0.1', name: 'env-name', userdata: 'env ud' },
            { ip: '127.0.0.1', name: '', userdata: '' },
            { ip: '127.0.0.1' },
            { ip: '127.0.0.1', name: 'Ümlaut ✓' },
          ]);
          const first = rec.seen[0]!;
          assert.equal(first.method, 'PUT');
          assert.equal(first.url, `/ztp/register/${mac}`);
          assert.equal(first.headers['content-type'], 'application/json');
          assert.match(String(first.headers['user-agent']), /^ztp-client-py\/\S+ python\//);
          assert.equal(first.headers.authorization, undefined);
        } finally {
          await rec.close();
        }
      });

      it('--dry-run sends nothing, hides the token, and plans what the Node client plans', async () => {
        const rec = await recorder();
        try {
          const args = ['--server', rec.url, '--id', 'AABB.CC00.2233', '--ip', '10.1.2.3'];
          const more = ['--name', 'n1', '--userdata', 'u1', '--token', 'secret-tok'];
          const py1 = await py([...args, ...more, '--dry-run', '--json']);
          const node = await run(process.execPath, [
            BUNDLE,
            ...args,
            ...more,
            '--dry-run',
            '--json',
          ]);
          assert.equal(py1.code, 0, py1.stderr);
          assert.deepEqual(JSON.parse(py1.stdout), JSON.parse(node.stdout));
          const text = await py([...args, '--token', 'secret-tok', '--dry-run']);
          assert.equal(
            text.stdout,
            `PUT ${rec.url}/ztp/register/aa:bb:cc:00:22:33\nauthorization: Bearer ***\n{"ip":"10.1.2.3"}\n(dry run: nothing sent; id is the given with --id)\n`,
          );
          assert.ok(!py1.stdout.includes('secret-tok') && !text.stdout.includes('secret-tok'));
          assert.equal(rec.seen.length, 0);
        } finally {
          await rec.close();
        }
      });

      it('waits out 503 honouring Retry-After; gives up at once when it points beyond --wait', async () => {
        const rec = await recorder();
        try {
          const busy = (after: string, status = 503): Answer => ({
            status,
            headers: { 'content-type': 'application/problem+json', 'retry-after': after },
            body: JSON.stringify({ code: 'storage_unavailable', detail: 'try later' }),
          });
          rec.answers.push(busy('1'));
          const r = await py(['--server', rec.url, '--id', `${tag}-busy`, '--wait', '30s']);
          assert.equal(r.code, 0, r.stderr);
          assert.match(
            r.stderr,
            /^ztp_client\.py: attempt 1 failed: server answered 503 storage_unavailable: try later; retrying in 1\.[0-2]s \(giving up in (29|30)\.\ds\)\n$/,
          );
          assert.equal(rec.seen.length, 2);
          rec.answers.push(busy('120', 429));
          const far = await py(['--server', rec.url, '--id', `${tag}-busy`, '--wait', '5s']);
          assert.equal(far.code, 5, far.stderr);
          assert.match(far.stderr, /asked to retry after 120\.0s, beyond --wait/);
          assert.equal(rec.seen.length, 3, 'no second attempt');
        } finally {
          await rec.close();
        }
      });

      it('a server that never answers: --wait 2s retries with backoff, then exits 5', async () => {
        const port = await freePort();
        const r = await py(['--server', `http://127.0.0.1:${port}`, '--wait', '2s'], {
          ms: 30_000,
        });
        assert.equal(r.code, 5, r.stderr);
        assert.match(
          r.stderr,
          /attempt 1 failed: connect ECONNREFUSED 127\.0\.0\.1:\d+; retrying in 0\.[2-5]s/,
        );
        const gaveUp = new RegExp(
          `gave up after (\\d+\\.\\d)s and \\d+ attempts: http://127\\.0\\.0\\.1:${port} did not accept the registration \\(last error: connect ECONNREFUSED`,
        ).exec(r.stderr);
        assert.ok(gaveUp, r.stderr);
        assert.ok(Number(gaveUp[1]) >= 2, r.stderr);
        assert.ok(r.ms >= 1900 && r.ms < 20_000, `${r.ms} ms`);
        const quiet = await py(['--server', `http://127.0.0.1:${port}`, '--wait', '1s', '--quiet']);
        assert.equal(quiet.code, 5);
        assert.doesNotMatch(quiet.stderr, /retrying/);
      });
    });
  });
});
