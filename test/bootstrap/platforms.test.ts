/**
 * Each platform's script, checked the way its boot environment would take it: shell scripts
 * parsed by sh (and busybox sh), Python compiled and run under Python 2.7 and 3 (pyenv), the
 * NX-OS #md5sum recomputed with sed and md5sum as Cisco documents it, the SONiC ZTP JSON checked
 * for what SONiC's ZTP engine requires.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { platformNamed, PLATFORMS, withPoapMd5 } from '../../src/bootstrap/platforms.js';
import { SHELL_CLIENT } from '../../src/client/shell-script.js';
import { tempDir } from '../helpers.js';
import { run, which } from '../client/support.js';

const tmp = tempDir('ztp-bootstrap-');
after(() => tmp.cleanup());

const CTX = { server: 'http://ztp.example:8080', token: 'ztp_tok-EN.1~+/=' };
const render = (name: string, ctx: Parameters<(typeof PLATFORMS)[number]['render']>[0] = CTX) =>
  platformNamed(name)!.render(ctx);
const file = (name: string, text: string) => {
  const path = join(tmp.dir, name);
  writeFileSync(path, text);
  return path;
};
const SH_PLATFORMS = PLATFORMS.filter((p) => p.contentType.startsWith('text/x-shellscript'));
const PY_PLATFORMS = PLATFORMS.filter((p) => p.contentType.startsWith('text/x-python'));

/** pyenv interpreters: 2.7, 3.6 and the newest 3 installed (the CI matrix). */
function pythons(): { version: string; env: NodeJS.ProcessEnv }[] {
  if (which('pyenv') === undefined) return [];
  const installed = execFileSync('pyenv', ['versions', '--bare'], { encoding: 'utf8' })
    .split('\n')
    .map((v) => v.trim())
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v));
  const threes = installed.filter((v) => v.startsWith('3.'));
  const newest = threes.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))[
    threes.length - 1
  ];
  const wanted = [
    installed.find((v) => v.startsWith('2.7.')),
    installed.find((v) => v.startsWith('3.6.')),
    newest,
  ];
  return [...new Set(wanted.filter((v) => v !== undefined))].map((version) => ({
    version,
    env: { ...process.env, PYENV_VERSION: version },
  }));
}
const PYTHONS = pythons();
const noPython = PYTHONS.length === 0 ? 'pyenv with Python 2.7/3 is not installed' : false;
const BUSYBOX = which('busybox');

describe('shell platforms', () => {
  for (const p of SH_PLATFORMS) {
    it(`${p.name}: sh -n and busybox sh -n accept it`, { skip: false }, () => {
      const path = file(`${p.name}.sh`, render(p.name));
      for (const shell of ['sh', which('dash'), BUSYBOX].filter((s) => s !== undefined)) {
        const args = shell === BUSYBOX ? ['sh', '-n', path] : ['-n', path];
        const r = spawnSync(shell, args, { encoding: 'utf8' });
        assert.equal(r.status, 0, `${shell} -n ${p.name}: ${r.stderr}`);
      }
    });
  }

  it('sh is the /ztp/client.sh text with the URL filled, plus the token and id defaults', () => {
    assert.equal(
      render('sh', { server: CTX.server }),
      SHELL_CLIENT.replace('@@ZTP_SERVER@@', CTX.server),
    );
    const text = render('sh', { ...CTX, deviceId: '44:38:39:ff:40:94' });
    assert.match(text, /\nZTP_SERVED_FROM='http:\/\/ztp\.example:8080'\n/);
    assert.match(text, /\n\[ -n "\$\{ZTP_TOKEN:-\}" \] \|\| ZTP_TOKEN='ztp_tok-EN\.1~\+\/='\n/);
    assert.match(
      text,
      /\n\[ -n "\$\{ZTP_ID:-\}\$\{ZTP_ID_SOURCE:-\}" \] \|\| ZTP_ID='44:38:39:ff:40:94'\n/,
    );
  });

  it('the baked-in token and id are what the client sends, and flags still win', async () => {
    const path = file('baked.sh', render('sh', { ...CTX, deviceId: '44:38:39:ff:40:94' }));
    const dry = await run('sh', [path, '--dry-run', '--json', '--ip', '10.0.0.5']);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { url: string; authorization: string; id: string };
    assert.equal(plan.url, 'http://ztp.example:8080/ztp/register/44:38:39:ff:40:94');
    assert.equal(plan.authorization, 'Bearer ***');
    const flagged = await run('sh', [
      path,
      '--dry-run',
      '--json',
      '--ip',
      '10.0.0.5',
      '--id',
      'sw1',
    ]);
    assert.equal((JSON.parse(flagged.stdout) as { id: string }).id, 'sw1');
  });

  it('cumulus carries the CUMULUS-AUTOPROVISIONING marker Cumulus ZTP looks for', () => {
    const text = render('cumulus');
    assert.match(text, /^#!\/bin\/sh\n# CUMULUS-AUTOPROVISIONING\n/);
    assert.ok(!render('sh').includes('CUMULUS-AUTOPROVISIONING'));
  });
});

describe(
  'the ONIE installer under busybox',
  { skip: BUSYBOX ? false : 'busybox is not installed' },
  () => {
    let server: Server;
    let url: string;
    const seen: { method: string; url: string; headers: Record<string, unknown>; body: string }[] =
      [];
    before(async () => {
      server = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (c: string) => (body += c));
        req.on('end', () => {
          seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
          res.writeHead(req.url!.includes('refuse') ? 403 : 201).end('{}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => new Promise((r) => server.close(r)));

    const onie = (server_: string, env: Record<string, string>) => {
      const path = file('onie-installer', render('onie', { server: server_, token: 'tok' }));
      // ONIE's userland: busybox is the only tool on PATH.
      const bin = join(tmp.dir, 'onie-bin');
      execFileSync('mkdir', ['-p', bin]);
      for (const tool of ['wget', 'sh', 'echo', 'cat'])
        spawnSync('ln', ['-sf', BUSYBOX!, join(bin, tool)]);
      return run(BUSYBOX!, ['sh', path], { env: { PATH: bin, ...env } });
    };

    it('POSTs ip= as a form to /ztp/register/{onie_eth_addr} with the token, then exits 1', async () => {
      seen.length = 0;
      const r = await onie(url, { onie_eth_addr: '14:02:EC:2D:F0:00', onie_disco_ip: '10.0.0.7' });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /registered 14:02:EC:2D:F0:00 .*ONIE continues discovery/);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.method, 'POST');
      assert.equal(seen[0]!.url, '/ztp/register/14:02:EC:2D:F0:00');
      assert.equal(seen[0]!.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(seen[0]!.headers.authorization, 'Bearer tok');
      assert.equal(seen[0]!.body, 'ip=10.0.0.7');
    });

    it('exits 2 when the server refuses, and without a MAC sends nothing', async () => {
      const refused = await onie(`${url}/refuse`, { onie_eth_addr: '14:02:ec:2d:f0:00' });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /registration of 14:02:ec:2d:f0:00 .* failed/);
      seen.length = 0;
      const none = await onie(url, {});
      assert.equal(none.code, 2);
      assert.match(none.stderr, /cannot find the management MAC/);
      assert.equal(seen.length, 0);
    });
  },
);

describe('Python platforms', { skip: noPython }, () => {
  for (const p of PY_PLATFORMS) {
    it(`${p.name}: compiles under ${PYTHONS.map((v) => v.version).join(', ')}`, () => {
      const path = file(`${p.name}.py`, render(p.name));
      for (const py of PYTHONS) {
        const r = spawnSync('python', ['-m', 'py_compile', path], {
          env: py.env,
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, `python ${py.version} py_compile ${p.name}: ${r.stderr}`);
      }
    });
  }

  describe('fetch /ztp/client.py and run it in the same interpreter', () => {
    let server: Server;
    let url: string;
    before(async () => {
      // A stand-in client that shows what it was given and exits with a code of its own.
      const client = 'import sys, json\nprint(json.dumps(sys.argv[1:]))\nsys.exit(3)\n';
      server = createServer((req, res) =>
        req.url === '/ztp/client.py' ? res.end(client) : res.writeHead(404).end(),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => new Promise((r) => server.close(r)));

    for (const name of ['eos', 'iosxe', 'nxos', 'junos']) {
      it(`${name}: passes --server and --token, exits with the client's code`, async () => {
        const path = file(`${name}-run.py`, render(name, { server: url, token: 'tok' }));
        for (const py of PYTHONS) {
          const r = await run('python', [path], { env: py.env });
          assert.equal(r.code, 3, `${py.version}: ${r.stderr}`);
          assert.deepEqual(JSON.parse(r.stdout), ['--server', url, '--token', 'tok']);
        }
        const noToken = file(`${name}-nt.py`, render(name, { server: url }));
        const r = await run('python', [noToken], { env: PYTHONS[0]!.env });
        assert.deepEqual(JSON.parse(r.stdout), ['--server', url]);
      });
    }

    it('python: is the client itself, with the server and the presented token filled in', async () => {
      const args = ['--dry-run', '--json', '--id', 'sw1', '--ip', '10.0.0.1'];
      for (const [token, authorization] of [
        ['tok', 'Bearer ***'],
        [undefined, null],
      ] as const) {
        const path = file(`python-${token ?? 'none'}.py`, render('python', { server: url, token }));
        for (const py of PYTHONS) {
          const r = await run('python', [path, ...args], { env: py.env });
          assert.equal(r.code, 0, `${py.version}: ${r.stderr}`);
          const plan = JSON.parse(r.stdout) as { url: string; authorization: string | null };
          assert.equal(plan.url, `${url}/ztp/register/sw1`);
          assert.equal(plan.authorization, authorization);
        }
      }
    });

    it('says why and exits non-zero when the server cannot be reached', async () => {
      const path = file('eos-down.py', render('eos', { server: 'http://127.0.0.1:1' }));
      for (const py of PYTHONS) {
        const r = await run('python', [path], { env: py.env });
        assert.equal(r.code, 1, py.version);
        assert.match(r.stderr, /ztp: cannot download http:\/\/127\.0\.0\.1:1\/ztp\/client\.py/);
      }
    });
  });
});

describe('nxos #md5sum', () => {
  it('is the md5 NX-OS POAP computes: sed "/^#md5sum/d" | md5sum', () => {
    const text = render('nxos');
    const lines = text.split('\n');
    assert.equal(lines[0], '#!/bin/env python3');
    assert.match(lines[1]!, /^#md5sum="[0-9a-f]{32}"$/);
    const path = file('poap.py', text);
    // Cisco's own recipe, run with the real tools.
    const recomputed = execFileSync('sh', ['-c', `sed '/^#md5sum/d' "$1" | md5sum`, 'sh', path], {
      encoding: 'utf8',
    }).split(' ')[0];
    assert.equal(lines[1], `#md5sum="${recomputed}"`);
    // Another server URL or token: another checksum, still right.
    const other = render('nxos', { server: 'https://poap.example', token: 'x' });
    assert.notEqual(other.split('\n')[1], lines[1]);
    assert.equal(withPoapMd5(other), other);
  });
});

describe('sonic ztp.json', () => {
  it('has what SONiC ZTP requires: a ztp object of sections, a plugin with url.source', () => {
    const doc = JSON.parse(render('sonic')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc), ['ztp'], 'the ztp object is the first and only one');
    const ztp = doc.ztp as Record<string, unknown>;
    const sections = Object.entries(ztp).filter(([, v]) => typeof v === 'object' && v !== null);
    assert.equal(sections.length, 1);
    const [name, section] = sections[0]! as [string, Record<string, unknown>];
    // Sections run in lexical order; a leading number names the order, not a plugin.
    assert.match(name, /^\d+-[a-z-]+$/);
    const plugin = section.plugin as { url: { source: string; destination: string } } & Record<
      string,
      unknown
    >;
    assert.equal(
      plugin.url.source,
      'http://ztp.example:8080/ztp/bootstrap/sh?token=ztp_tok-EN.1~%2B%2F%3D',
    );
    assert.ok(new URL(plugin.url.source).searchParams.get('token') === CTX.token);
    assert.match(plugin.url.destination, /^\/[^\s]+$/);
    // The sh client refuses positional arguments: SONiC must not pass the section file.
    assert.equal(plugin['ignore-section-data'], true);
    assert.equal(section['ignore-result'], false);
    assert.equal(ztp['restart-ztp-no-config'], false);
  });
});
