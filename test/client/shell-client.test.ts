/**
 * The POSIX sh client served at GET /ztp/client.sh: run with dash (with curl, and with GNU wget
 * only) and with busybox sh + busybox tools, against a real `ztp serve` on loopback. It must
 * register the same device the same way as the Node client.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SHELL_CLIENT } from '../../src/client/shell-script.js';
import { servedFrom } from '../../src/bootstrap/client-script.js';
import { tempDir } from '../helpers.js';
import {
  assertServedScript,
  BUNDLE,
  clientEnv,
  freePort,
  GNU_TOOLS,
  makeToolbox,
  ROOT,
  run,
  serve,
  which,
  type Served,
} from './support.js';

const DASH = which('dash') ?? '/bin/sh';
/**
 * Where the sh and Node clients are compared, both are given name and userdata: what a client
 * sends without them is changing (issue #18: only when given), and may differ between them.
 */
const SAME = ['--name', 'box-1', '--userdata', ''];
const tmp = tempDir('ztp-sh-client-');
after(() => tmp.cleanup());
const toolbox = (name: string, tools: Record<string, string | undefined>) =>
  makeToolbox(join(tmp.dir, name), tools);

describe('GET /ztp/client.sh', () => {
  it('serves the script generated from src/client/ztp-client.sh (npm run gen:client-sh)', () => {
    assert.equal(SHELL_CLIENT, readFileSync(join(ROOT, 'src/client/ztp-client.sh'), 'utf8'));
  });

  it('is a shell script with the URL it was fetched from filled in, not behind auth', async () => {
    await assertServedScript('/ztp/client.sh', {
      contentType: /^text\/x-shellscript/,
      shebang: '#!/bin/sh',
      servedFrom: (url) => `ZTP_SERVED_FROM='${url}'`,
      unsafeHost: "x'; rm -rf / #",
    });
  });

  it('accepts IPv6 hosts and refuses quotes, spaces and dollar signs', () => {
    const req = (host: string) => ({ host, protocol: 'https' }) as Parameters<typeof servedFrom>[0];
    assert.equal(servedFrom(req('[::1]:8443')), 'https://[::1]:8443');
    assert.equal(servedFrom(req('ztp.example')), 'https://ztp.example');
    for (const bad of ['a b', "a'b", 'a$(id)', 'a`id`', '']) assert.equal(servedFrom(req(bad)), '');
  });
});

describe('the sh client against a real server', () => {
  let server: Served;
  let script: string;
  before(async () => {
    server = await serve();
    script = join(tmp.dir, 'client.sh');
    // Fetched the way a device does it.
    execFileSync('curl', ['-fsS', '-o', script, `${server.url}/ztp/client.sh`]);
  });
  after(async () => {
    await server.stop();
  });

  const dash = (args: string[], env: Record<string, string> = {}, pathDir?: string) =>
    run(DASH, [script, ...args], {
      env: clientEnv(pathDir === undefined ? env : { ...env, PATH: pathDir }),
    });

  it('curl | sh registers this device exactly as the Node client does', async () => {
    const piped = await run('sh', [
      '-c',
      `curl -fsS ${server.url}/ztp/client.sh | sh -s -- --json --name box-1 --userdata ''`,
    ]);
    assert.equal(piped.code, 0, piped.stderr);
    const viaNode = await run(process.execPath, [
      ...[BUNDLE, '--server', server.url, '--json', ...SAME],
    ]);
    assert.equal(viaNode.code, 0, viaNode.stderr);
    assert.equal(piped.stdout, viaNode.stdout);
    const record = JSON.parse(piped.stdout) as { id: string; ip: string };
    assert.equal(record.ip, '127.0.0.1');
    const human = await dash([]);
    assert.equal(human.stdout, `registered ${record.id} as 127.0.0.1 (updated)\n`);
    // Both dry runs describe the same request.
    const dryNode = await run(process.execPath, [
      ...[BUNDLE, '--server', server.url, '--dry-run', '--json', ...SAME],
    ]);
    const drySh = await dash(['--dry-run', '--json', ...SAME]);
    assert.equal(drySh.code, 0, drySh.stderr);
    assert.deepEqual(JSON.parse(drySh.stdout), JSON.parse(dryNode.stdout));
  });

  it('sends userdata byte for byte (newlines, tabs, quotes, backslashes, UTF-8) like Node', async () => {
    const file = join(tmp.dir, 'userdata.txt');
    writeFileSync(file, 'rack "4"\tslot\\2\r\nÜmlaut ✓\n\n');
    const sh = await dash(['--id', 'ud-sh', '--userdata-file', file, '--json', '--name', 'n "q"']);
    assert.equal(sh.code, 0, sh.stderr);
    const node = await run(process.execPath, [
      BUNDLE,
      ...[
        '--server',
        server.url,
        '--id',
        'ud-node',
        '--userdata-file',
        file,
        '--json',
        '--name',
        'n "q"',
      ],
    ]);
    const a = JSON.parse(sh.stdout) as Record<string, string>;
    const b = JSON.parse(node.stdout) as Record<string, string>;
    assert.equal(a.userdata, readFileSync(file, 'utf8'));
    assert.deepEqual({ ...a, id: '' }, { ...b, id: '' });
  });

  it('--id-source machine-id and env variables work like the Node client', async () => {
    const sh = await dash([], {
      ZTP_ID_SOURCE: 'machine-id',
      ZTP_NAME: 'env-name',
      ZTP_USERDATA: 'u',
    });
    const node = await run(process.execPath, [BUNDLE, '--server', server.url], {
      env: clientEnv({ ZTP_ID_SOURCE: 'machine-id', ZTP_NAME: 'env-name', ZTP_USERDATA: 'u' }),
    });
    assert.equal(sh.code, node.code, sh.stderr);
    if (node.code === 3) return; // no machine-id here: both failed the same way
    assert.equal(sh.stdout.replace('(created)', '(updated)'), node.stdout);
  });

  it('unavailable id sources exit 3 naming what was tried, like the Node client', async () => {
    for (const source of ['dmi-uuid', 'cpu']) {
      const sh = await dash(['--id-source', source]);
      const node = await run(process.execPath, [
        BUNDLE,
        '--server',
        server.url,
        '--id-source',
        source,
      ]);
      assert.equal(sh.code, node.code, `${source}: ${sh.stderr}`);
      if (node.code !== 3) continue;
      // Same message after the program name.
      assert.equal(
        sh.stderr.replace(/^ztp-client\.sh: /, ''),
        node.stderr.replace(/^ztp-client: /, ''),
      );
    }
  });

  it('usage errors exit 2 before anything is sent', async () => {
    for (const args of [
      ['--id', 'a b'],
      ['--id-source', 'serial'],
      ['--ip', '1.2.3'],
      ['--wait', 'soon'],
      ['--wait', '60'],
      ['--timeout', '50ms'],
      ['--bogus', 'x'],
      ['--id', 'x', '--id-source', 'cpu'],
      ['--id', '...'],
      ['--id', '.'],
    ]) {
      const r = await dash(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /--help/);
    }
    // A bare 12-hex MAC is the MAC, as on the server.
    const mac = await dash(['--id', 'AABBCCDDEEFF', '--dry-run', '--json']);
    assert.equal((JSON.parse(mac.stdout) as { id: string }).id, 'aa:bb:cc:dd:ee:ff', mac.stderr);
    const bare = await dash(['--wait', '60']);
    assert.match(bare.stderr, /--wait: '60' has no unit: write e\.g\. 60s/);
    const help = await dash(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Exit codes:[\s\S]*5 {2}gave up waiting/);
  });

  it('the real server answering 400 exits 4 at once with the detail', async () => {
    const r = await dash(['--id', 'bad-ip', '--ip', ':::', '--wait', '60s']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(
      r.stderr,
      /rejected the registration \(400 invalid_ip\): ip must be an IPv4 or IPv6 address/,
    );
    assert.doesNotMatch(r.stderr, /retrying/);
  });

  it('a server started after the client: it waits and succeeds', async () => {
    const port = await freePort();
    const client = run(DASH, [
      script,
      '--server',
      `http://127.0.0.1:${port}`,
      '--id',
      'sh-late',
      '--wait',
      '30s',
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    const late = await serve({ port });
    try {
      const r = await client;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /attempt 1 failed: .*retrying in/);
      assert.equal(r.stdout, 'registered sh-late as 127.0.0.1 (created)\n');
    } finally {
      await late.stop();
    }
  });

  it('a server that never comes up: --wait 2 exits 5 with a clear message', async () => {
    const port = await freePort();
    const r = await run(DASH, [script, '--server', `http://127.0.0.1:${port}`, '--wait', '2s'], {
      killAfterMs: 30_000,
    });
    assert.equal(r.code, 5, r.stderr);
    // It gives up once --wait has passed, never before; how long past it depends on how loaded
    // the machine is (one attempt spawns curl), so only the lower bound is the behaviour.
    const gaveUp = new RegExp(
      `gave up after (\\d+\\.\\d)s and \\d+ attempts?: http://127\\.0\\.0\\.1:${port} did not accept`,
    ).exec(r.stderr);
    assert.ok(gaveUp, r.stderr);
    assert.ok(Number(gaveUp[1]) >= 2, r.stderr);
    assert.ok(r.ms >= 1900 && r.ms < 20_000, `${r.ms} ms`);
  });

  it('with GNU wget instead of curl it registers the same way', async (t) => {
    const wget = which('wget');
    if (
      wget === undefined ||
      !execFileSync(wget, ['--help'], { encoding: 'utf8' }).includes('--method')
    ) {
      t.skip('GNU wget is not installed');
      return;
    }
    const tools = Object.fromEntries(GNU_TOOLS.map((n) => [n, which(n)]));
    const dir = toolbox('wget-only', { ...tools, wget });
    const args = ['--id', 'via-wget', '--json', '--name', 'box-1', '--userdata', 'a\nb'];
    const r = await dash(args, {}, dir);
    assert.equal(r.code, 0, r.stderr);
    const node = await run(process.execPath, [BUNDLE, '--server', server.url, ...args]);
    assert.equal(r.stdout, node.stdout);
    assert.equal((JSON.parse(r.stdout) as { userdata: string }).userdata, 'a\nb');
    const bad = await dash(['--id', 'bad-ip', '--ip', ':::'], {}, dir);
    assert.equal(bad.code, 4, bad.stderr);
    assert.match(bad.stderr, /400 invalid_ip/);
  });

  it('with busybox sh and busybox tools (+ curl) it registers the same way', async (t) => {
    const busybox = which('busybox');
    if (busybox === undefined) {
      t.skip('busybox is not installed (apt-get install busybox): busybox variant not tested');
      return;
    }
    const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n');
    const tools: Record<string, string | undefined> = { curl: which('curl') };
    for (const n of [...GNU_TOOLS, 'sh', 'nslookup']) if (applets.includes(n)) tools[n] = busybox;
    const dir = toolbox('busybox', tools);
    const env = clientEnv({ PATH: dir });
    const viaBusybox = await run(busybox, ['sh', script, '--json', ...SAME], { env });
    assert.equal(viaBusybox.code, 0, viaBusybox.stderr);
    const viaNode = await run(process.execPath, [
      ...[BUNDLE, '--server', server.url, '--json', ...SAME],
    ]);
    assert.equal(viaBusybox.stdout, viaNode.stdout);
    const dry = await run(busybox, ['sh', script, '--dry-run', '--json', ...SAME], { env });
    const dryNode = await run(process.execPath, [
      ...[BUNDLE, '--server', server.url, '--dry-run', '--json', ...SAME],
    ]);
    assert.deepEqual(JSON.parse(dry.stdout), JSON.parse(dryNode.stdout));
    const down = await run(
      busybox,
      ['sh', script, '--server', `http://127.0.0.1:${await freePort()}`, '--wait', '1s'],
      { env },
    );
    assert.equal(down.code, 5, down.stderr);
  });

  it('without curl or any wget it says so (exit 2)', async () => {
    const tools = Object.fromEntries(GNU_TOOLS.map((n) => [n, which(n)]));
    const dir = toolbox('no-http', tools);
    const r = await dash(['--id', 'x'], {}, dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /needs curl, GNU wget, or a BusyBox wget with --post-data/);
  });

  it('with busybox as the only tool (busybox sh, busybox wget: POST, form body) it registers', async (t) => {
    const busybox = busyboxOrSkip(t);
    if (busybox === undefined) return;
    const dir = busyboxOnly(busybox, 'busybox-only');
    const env = clientEnv({ PATH: dir });
    const ud = 'rack "4"\tslot\\2 & x=y 100%\r\nÜmlaut ✓\n';
    const first = await run(
      busybox,
      ['sh', script, '--id', 'bb-only', '--json', '--name', 'edge 1', '--userdata', ud],
      { env },
    );
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), {
      id: 'bb-only',
      ip: '127.0.0.1',
      name: 'edge 1',
      userdata: ud,
    });
    const again = await run(busybox, ['sh', script, '--id', 'bb-only'], { env });
    assert.equal(again.stdout, 'registered bb-only as 127.0.0.1 (updated)\n', again.stderr);
    // Detected identity, as the Node client detects it.
    const detected = await run(busybox, ['sh', script, '--json'], { env });
    const viaNode = await run(process.execPath, [BUNDLE, '--server', server.url, '--json']);
    assert.equal(detected.code, viaNode.code, detected.stderr);
    assert.equal(detected.stdout, viaNode.stdout);
    // A 4xx: exit 4 at once (BusyBox keeps no body of an error: the status line is the reason).
    const bad = await run(busybox, ['sh', script, '--id', 'bb-bad', '--ip', ':::'], { env });
    assert.equal(bad.code, 4, bad.stderr);
    assert.match(bad.stderr, /rejected the registration \(400\): Bad Request/);
    const https = await run(busybox, ['sh', script, '--server', 'https://127.0.0.1:1'], { env });
    assert.equal(https.code, 2);
    assert.match(https.stderr, /BusyBox wget cannot check the server's TLS certificate/);
    const down = await run(
      busybox,
      ['sh', script, '--server', `http://127.0.0.1:${await freePort()}`, '--wait', '1s'],
      { env },
    );
    assert.equal(down.code, 5, down.stderr);
    assert.match(down.stderr, /Connection refused/);
  });
});

/** busybox, or undefined after skipping the test; under CI=true a missing busybox fails it. */
function busyboxOrSkip(t: { skip(message: string): void }): string | undefined {
  const busybox = which('busybox');
  if (busybox === undefined) {
    assert.notEqual(process.env.CI, 'true', 'busybox is not installed (.ci/run installs it)');
    t.skip('busybox is not installed (apt-get install busybox): busybox variant not tested');
  }
  return busybox;
}

/** A PATH directory of busybox applets only: no curl, no GNU wget, nothing else. */
function busyboxOnly(busybox: string, name: string, wget?: string): string {
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n');
  const tools: Record<string, string | undefined> = {};
  for (const n of applets) if (n !== '' && !n.includes('/')) tools[n] = busybox;
  if (wget !== undefined) tools.wget = wget;
  return toolbox(name, tools);
}

describe('the sh client sends the bearer token', () => {
  let stub: Server;
  let url: string;
  const seen: IncomingHttpHeaders[] = [];
  before(async () => {
    stub = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":"tok-dev","ip":"127.0.0.1","name":"n","userdata":""}');
      });
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
  });
  after(() => stub.close());

  it('from --token-file and ZTP_TOKEN, with curl and with wget', async () => {
    const script = join(tmp.dir, 'token-client.sh');
    writeFileSync(script, SHELL_CLIENT);
    const tokenFile = join(tmp.dir, 'tok');
    writeFileSync(tokenFile, 'ztp_secret"\\x\n');
    seen.length = 0;
    const a = await run(DASH, [
      script,
      '--server',
      url,
      '--id',
      'tok-dev',
      '--token-file',
      tokenFile,
    ]);
    assert.equal(a.code, 0, a.stderr);
    const b = await run(DASH, [script, '--server', url, '--id', 'tok-dev'], {
      env: clientEnv({ ZTP_TOKEN: 'from-env' }),
    });
    assert.equal(b.code, 0, b.stderr);
    assert.equal(seen[0]!.authorization, 'Bearer ztp_secret"\\x');
    assert.equal(seen[1]!.authorization, 'Bearer from-env');
    assert.equal(seen[0]!['content-type'], 'application/json');
    const wget = which('wget');
    if (wget !== undefined && existsSync(wget)) {
      const tools = Object.fromEntries(GNU_TOOLS.map((n) => [n, which(n)]));
      const dir = toolbox('wget-token', { ...tools, wget });
      const c = await run(DASH, [script, '--server', url, '--id', 'tok-dev'], {
        env: clientEnv({ ZTP_TOKEN: 'wget-token', PATH: dir }),
      });
      assert.equal(c.code, 0, c.stderr);
      assert.equal(seen[2]!.authorization, 'Bearer wget-token');
    }
  });
});

describe('the sh client sends name and userdata only when given', () => {
  let stub: Server;
  let url: string;
  const requests: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] =
    [];
  before(async () => {
    stub = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":"given","ip":"127.0.0.1","name":"","userdata":""}');
      });
    });
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
  });
  after(() => stub.close());
  const script = join(tmp.dir, 'given-client.sh');
  before(() => writeFileSync(script, SHELL_CLIENT));

  it('with curl: JSON with ip only, unless --name/--userdata or ZTP_NAME/ZTP_USERDATA', async () => {
    requests.length = 0;
    const base = ['--server', url, '--id', 'given', '--ip', '10.0.0.9'];
    for (const [args, env] of [
      [[], {}],
      [['--name', 'n1'], {}],
      [[], { ZTP_NAME: 'n2', ZTP_USERDATA: 'u2' }],
      [['--name', '', '--userdata', ''], {}],
      [[], { ZTP_NAME: '', ZTP_USERDATA: '' }],
    ] as [string[], Record<string, string>][]) {
      const r = await run(DASH, [script, ...base, ...args], { env: clientEnv(env) });
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual(
      requests.map((r) => [r.method, JSON.parse(r.body) as unknown]),
      [
        ['PUT', { ip: '10.0.0.9' }],
        ['PUT', { ip: '10.0.0.9', name: 'n1' }],
        ['PUT', { ip: '10.0.0.9', name: 'n2', userdata: 'u2' }],
        ['PUT', { ip: '10.0.0.9', name: '', userdata: '' }],
        ['PUT', { ip: '10.0.0.9' }],
      ],
    );
  });

  it('with busybox wget: POST, exactly the form BusyBox sends, the token as a header', async (t) => {
    const busybox = busyboxOrSkip(t);
    if (busybox === undefined) return;
    const dir = busyboxOnly(busybox, 'busybox-given');
    requests.length = 0;
    const base = ['sh', script, '--server', url, '--id', 'given', '--ip', '10.0.0.9'];
    const env = clientEnv({ PATH: dir, ZTP_TOKEN: 'tok+/=en' });
    const a = await run(busybox, base, { env });
    assert.equal(a.code, 0, a.stderr);
    const b = await run(busybox, [...base, '--name', 'a b', '--userdata', 'x=1&y=é\n'], { env });
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(
      requests.map((r) => [r.method, r.url, r.body]),
      [
        ['POST', '/ztp/register/given', 'ip=10.0.0.9'],
        ['POST', '/ztp/register/given', 'ip=10.0.0.9&name=a%20b&userdata=x%3D1%26y%3D%C3%A9%0A'],
      ],
    );
    const headers = requests[0]!.headers;
    assert.equal(headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(headers.authorization, 'Bearer tok+/=en');
  });

  it('with a BusyBox wget that has no --header: the token goes as ?token=', async (t) => {
    const busybox = busyboxOrSkip(t);
    if (busybox === undefined) return;
    // A build without --header (simulated: its help does not list it; the rest is busybox).
    const wget = join(tmp.dir, 'wget-no-header');
    writeFileSync(
      wget,
      `#!${busybox} sh\ncase $1 in --help) ${busybox} wget --help 2>&1 | ${busybox} grep -v -e --header; exit 1 ;; esac\nfor a; do case $a in --header*) echo "--header used" >&2; exit 9 ;; esac; done\nexec ${busybox} wget "$@"\n`,
      { mode: 0o755 },
    );
    const dir = busyboxOnly(busybox, 'busybox-no-header', wget);
    requests.length = 0;
    const r = await run(
      busybox,
      ['sh', script, '--server', url, '--id', 'given', '--token', 'a+b&c'],
      {
        env: clientEnv({ PATH: dir }),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(requests[0]!.url, '/ztp/register/given?token=a%2Bb%26c');
    assert.equal(requests[0]!.headers.authorization, undefined);
    const dry = await run(
      busybox,
      ['sh', script, '--server', url, '--id', 'given', '--token', 'a+b&c', '--dry-run', '--json'],
      { env: clientEnv({ PATH: dir }) },
    );
    assert.ok(!dry.stdout.includes('a+b'), dry.stdout);
    assert.deepEqual(JSON.parse(dry.stdout), {
      method: 'POST',
      url: `${url}/ztp/register/given?token=***`,
      authorization: null,
      body: `ip=127.0.0.1`,
      id: 'given',
      idFrom: 'given with --id',
    });
  });
});
