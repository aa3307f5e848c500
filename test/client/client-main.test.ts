/**
 * The device client's decisions with every outside fact injected: options and exit codes, the
 * waiting policy on a fake clock, and how answers are classified.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DetectionSources } from '../../src/client/detect.js';
import {
  attempt,
  classify,
  parseRetryAfter,
  type AttemptSpec,
  type Outcome,
} from '../../src/client/http.js';
import { main, type ClientDeps } from '../../src/client/main.js';
import {
  CLIENT_OPTIONS,
  clientHelp,
  EXIT,
  EXIT_CODE_HELP,
  parseDurationOption,
} from '../../src/client/options.js';
import { SHELL_CLIENT } from '../../src/client/shell-script.js';
import { backoffMs, MAX_BACKOFF_MS, withRetry } from '../../src/client/retry.js';

const MAC = '3c:52:82:11:22:33';
const INTERFACES = {
  eth0: [
    {
      address: '10.0.0.5',
      netmask: '255.255.255.0',
      family: 'IPv4' as const,
      mac: '3C:52:82:11:22:33',
      internal: false,
      cidr: '10.0.0.5/24',
    },
  ],
};

interface Harness {
  deps: ClientDeps;
  out: string[];
  err: string[];
  sent: AttemptSpec[];
  slept: number[];
  clock: { now: number };
}

function harness(
  answers: (Outcome | Error)[],
  opts: {
    env?: Record<string, string>;
    files?: Record<string, string>;
    source?: () => Promise<string>;
    stdin?: Buffer;
  } = {},
): Harness {
  const h: Harness = { out: [], err: [], sent: [], slept: [], clock: { now: 1_000_000 } } as never;
  const files = opts.files ?? {};
  const sources: DetectionSources = {
    readFile: async (p) => {
      const v = files[p];
      if (v === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return v;
    },
    networkInterfaces: () => INTERFACES,
    readCpuid: async () => {
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    },
  };
  let i = 0;
  h.deps = {
    env: opts.env ?? {},
    sources,
    sourceAddressFor: opts.source ?? (async () => '10.0.0.5'),
    attempt: async (spec) => {
      h.sent.push(spec);
      const a = answers[Math.min(i++, answers.length - 1)]!;
      if (a instanceof Error) throw a;
      return a;
    },
    retry: {
      now: () => h.clock.now,
      sleep: async (ms) => {
        h.slept.push(ms);
        h.clock.now += ms;
      },
      random: () => 0.5,
      log: (line) => h.err.push(line),
    },
    readStdin: async () => opts.stdin ?? Buffer.alloc(0),
    out: (line) => h.out.push(line),
    err: (line) => h.err.push(line),
    command: 'ztp register',
  };
  return h;
}

const RECORD = { id: MAC, ip: '10.0.0.5', name: 'sw-core-1', userdata: '' };
const OK: Outcome = { kind: 'ok', created: true, record: RECORD };
const BUSY: Outcome = { kind: 'retry', reason: 'server answered 503 storage_unavailable: down' };
const S = ['--server', 'http://ztp.example:8080'];

const dir = mkdtempSync(join(tmpdir(), 'ztp-client-main-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ztp register: success', () => {
  it('sends the detected MAC and source address, no name or userdata unless given', async () => {
    const h = harness([OK]);
    assert.equal(await main([...S], h.deps), EXIT.ok);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.url.href, `http://ztp.example:8080/ztp/register/${MAC}`);
    // A boot must not erase the name and userdata an admin set (issue 18).
    assert.deepEqual(JSON.parse(h.sent[0]!.body), { ip: '10.0.0.5' });
    const given = harness([OK], { env: { ZTP_USERDATA: '' } });
    await main([...S, '--name', '', '--userdata', 'u'], given.deps);
    assert.deepEqual(JSON.parse(given.sent[0]!.body), { ip: '10.0.0.5', name: '', userdata: 'u' });
    assert.equal(h.sent[0]!.token, undefined);
    assert.deepEqual(h.out, [`registered ${MAC} as 10.0.0.5 (created)`]);
  });

  it('--json prints the record; an update says updated', async () => {
    const h = harness([OK]);
    assert.equal(await main([...S, '--json'], h.deps), 0);
    assert.deepEqual(JSON.parse(h.out[0]!), RECORD);
    const u = harness([{ kind: 'ok', created: false, record: RECORD }]);
    await main(S, u.deps);
    assert.match(u.out[0]!, /\(updated\)$/);
  });

  it('flags win over the environment; ZTP_TOKEN becomes the bearer token', async () => {
    const h = harness([OK], {
      env: { ZTP_SERVER: 'http://env.example', ZTP_TOKEN: 'tok-123', ZTP_NAME: 'from-env' },
    });
    assert.equal(await main(['--name', 'from-flag', '--ip', '192.0.2.77'], h.deps), 0);
    assert.equal(h.sent[0]!.url.origin, 'http://env.example');
    assert.equal(h.sent[0]!.token, 'tok-123');
    const body = JSON.parse(h.sent[0]!.body) as { ip: string; name: string };
    assert.equal(body.name, 'from-flag');
    assert.equal(body.ip, '192.0.2.77');
  });

  it('sends name and userdata when given by flag or environment, an empty flag value too', async () => {
    const env = harness([OK], { env: { ZTP_NAME: 'env-name', ZTP_USERDATA: 'env ud' } });
    assert.equal(await main(S, env.deps), 0);
    assert.deepEqual(JSON.parse(env.sent[0]!.body), {
      ip: '10.0.0.5',
      name: 'env-name',
      userdata: 'env ud',
    });
    // An explicit empty value clears the field; an empty variable counts as unset.
    const flags = harness([OK], { env: { ZTP_NAME: '', ZTP_USERDATA: '' } });
    assert.equal(await main([...S, '--userdata', ''], flags.deps), 0);
    assert.deepEqual(JSON.parse(flags.sent[0]!.body), { ip: '10.0.0.5', userdata: '' });
  });

  it('--id is canonicalised; a path prefix in --server is kept', async () => {
    const h = harness([OK]);
    await main(['--server', 'https://proxy.example/ztp-api/', '--id', 'AABB.CCDD.EEFF'], h.deps);
    assert.equal(
      h.sent[0]!.url.href,
      'https://proxy.example/ztp-api/ztp/register/aa:bb:cc:dd:ee:ff',
    );
  });

  it('reads userdata and the token from files, userdata from stdin with -', async () => {
    const ud = join(dir, 'ud.txt');
    writeFileSync(ud, 'rack 4\nslot 2\n');
    const tok = join(dir, 'token');
    writeFileSync(tok, 'secret-token\n');
    const h = harness([OK]);
    assert.equal(await main([...S, '--userdata-file', ud, '--token-file', tok], h.deps), 0);
    assert.equal(
      (JSON.parse(h.sent[0]!.body) as { userdata: string }).userdata,
      'rack 4\nslot 2\n',
    );
    assert.equal(h.sent[0]!.token, 'secret-token');
    const s = harness([OK], { stdin: Buffer.from('from stdin') });
    await main([...S, '--userdata-file', '-'], s.deps);
    assert.equal((JSON.parse(s.sent[0]!.body) as { userdata: string }).userdata, 'from stdin');
  });

  it('--dry-run detects and prints, sends nothing, hides the token', async () => {
    const h = harness([OK]);
    assert.equal(await main([...S, '--dry-run', '--token', 'abc'], h.deps), 0);
    assert.equal(h.sent.length, 0);
    const text = h.out.join('\n');
    assert.match(text, new RegExp(`PUT http://ztp.example:8080/ztp/register/${MAC}`));
    assert.match(text, /Bearer \*\*\*/);
    assert.ok(!text.includes('abc'));
    const j = harness([OK]);
    await main([...S, '--dry-run', '--json', '--id-source', 'machine-id'], {
      ...j.deps,
      sources: { ...j.deps.sources, readFile: async () => `${'b'.repeat(32)}\n` },
    });
    const plan = JSON.parse(j.out[0]!) as { url: string; body: { ip: string }; idFrom: string };
    assert.equal(plan.url, `http://ztp.example:8080/ztp/register/${'b'.repeat(32)}`);
    assert.equal(plan.body.ip, '10.0.0.5');
    assert.match(plan.idFrom, /machine-id/);
  });
});

describe('ztp register: usage errors exit 2 before anything is sent', () => {
  const cases: [string, string[], RegExp, Record<string, string>?][] = [
    ['no server', [], /--server URL \(or ZTP_SERVER\) is required/],
    ['not a URL', ['--server', 'nope'], /not a URL/],
    ['ftp URL', ['--server', 'ftp://x'], /http:\/\/ or https:\/\//],
    ['unknown option', [...S, '--bogus'], /bogus/],
    ['bad id source', [...S, '--id-source', 'serial'], /mac, machine-id, cpu, dmi-uuid/],
    ['id and id-source', [...S, '--id', 'x', '--id-source', 'cpu'], /either --id or --id-source/],
    ['invalid id', [...S, '--id', 'a b'], /--id: device id must be/],
    ['reserved id', [...S, '--id', 'list'], /reserved/],
    ['invalid ip', [...S, '--ip', '10.0.0.256'], /--ip: ip must be/],
    ['control char in name', [...S, '--name', 'a\u0007b'], /control characters/],
    ['userdata too large', [...S, '--userdata', 'x'.repeat(64 * 1024 + 1)], /larger than 65536/],
    ['bad wait', [...S, '--wait', 'soon'], /--wait: 'soon' is not a duration/],
    ['wait without a unit', [...S, '--wait', '300'], /--wait: '300' has no unit: write e.g. 300s/],
    ['ZTP_TIMEOUT without a unit', S, /--timeout: '10' has no unit/, { ZTP_TIMEOUT: '10' }],
    ['zero timeout', [...S, '--timeout', '0'], /--timeout must be at least 100ms/],
    ['timeout below 100ms', [...S, '--timeout', '20ms'], /--timeout must be at least 100ms/],
    ['missing userdata file', [...S, '--userdata-file', '/nonexistent/ud'], /ENOENT/],
    [
      'missing CA file',
      ['--server', 'https://ztp.example', '--ca-file', '/nonexistent/ca.pem'],
      /cannot read --ca-file .*ENOENT/,
    ],
    ['token with space', [...S, '--token', 'a b'], /printable ASCII/],
    ['ZTP_WAIT invalid', S, /--wait/, { ZTP_WAIT: '-1' }],
    ['cert without key', [...S, '--cert-file', '/x.pem'], /--cert-file and --key-file together/],
    ['TLS files for http', [...S, '--ca-file', '/x.pem'], /need an https:\/\/ --server/],
  ];
  for (const [what, argv, message, env] of cases) {
    it(what, async () => {
      const h = harness([OK], env ? { env } : {});
      assert.equal(await main(argv, h.deps), EXIT.usage);
      assert.equal(h.sent.length, 0);
      assert.match(h.err.join('\n'), message);
      assert.match(h.err.join('\n'), /--help/);
    });
  }

  it('refuses a userdata file over 64 KiB and one that is not UTF-8', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(64 * 1024 + 1, 0x61));
    const h = harness([OK]);
    assert.equal(await main([...S, '--userdata-file', big], h.deps), EXIT.usage);
    assert.match(h.err[0]!, /larger than 65536 bytes/);
    const bin = join(dir, 'bin');
    writeFileSync(bin, Buffer.from([0xff, 0xfe, 0x00]));
    const b = harness([OK]);
    assert.equal(await main([...S, '--userdata-file', bin], b.deps), EXIT.usage);
    assert.match(b.err[0]!, /not valid UTF-8/);
    const notPem = join(dir, 'notpem');
    writeFileSync(notPem, 'hello');
    const c = harness([OK]);
    const https = ['--server', 'https://ztp.example'];
    assert.equal(await main([...https, '--ca-file', notPem], c.deps), EXIT.usage);
    assert.match(c.err[0]!, /--ca-file .* holds no PEM certificate/);
    const k = harness([OK]);
    const args = [...https, '--cert-file', notPem, '--key-file', notPem];
    assert.equal(await main(args, k.deps), EXIT.usage);
    assert.match(k.err[0]!, /--cert-file .* holds no PEM certificate/);
  });

  it('--help prints the options and every exit code, exit 0', async () => {
    const h = harness([OK]);
    assert.equal(await main(['--help'], h.deps), 0);
    for (const word of [
      '--server',
      '--id-source',
      'ZTP_TOKEN',
      '--ca-file',
      '--wait',
      'Exit codes',
    ]) {
      assert.ok(h.out[0]!.includes(word), word);
    }
    for (const code of [0, 1, 2, 3, 4, 5, 6])
      assert.match(clientHelp('x'), new RegExp(`\\n  ${code}  `));
  });
});

describe('ztp register: identity failures exit 3 and name what was tried', () => {
  it('cpu source unavailable', async () => {
    const h = harness([OK], { files: { '/proc/cpuinfo': 'flags : fpu sse\n' } });
    assert.equal(await main([...S, '--id-source', 'cpu'], h.deps), EXIT.identity);
    assert.equal(h.sent.length, 0);
    assert.match(h.err[0]!, /cannot find the cpu id: .*no Serial line.*serial-number.*no pn flag/);
  });

  it('mac: the route interface has no hardware address', async () => {
    const h = harness([OK], { source: async () => '10.0.0.5' });
    h.deps.sources.networkInterfaces = () => ({
      tun0: [{ ...INTERFACES.eth0[0]!, mac: '00:00:00:00:00:00' }],
    });
    assert.equal(await main(S, h.deps), EXIT.identity);
    assert.match(h.err[0]!, /tun0: all-zero/);
    assert.equal(h.sent.length, 0);
  });

  it('a given --id and --ip need no detection at all', async () => {
    const h = harness([OK], {
      source: async () => {
        throw new Error('must not be called');
      },
    });
    assert.equal(await main([...S, '--id', 'sn-1', '--ip', '10.1.1.1'], h.deps), 0);
  });
});

describe('ztp register: waiting for the server', () => {
  it('retries 5xx and connection errors with growing delays, then succeeds', async () => {
    const refused: Outcome = { kind: 'retry', reason: 'connect ECONNREFUSED 10.0.0.1:8080' };
    const h = harness([refused, refused, BUSY, OK]);
    assert.equal(await main(S, h.deps), 0);
    assert.equal(h.sent.length, 4);
    assert.deepEqual(h.slept, [backoffMs(1, 0.5), backoffMs(2, 0.5), backoffMs(3, 0.5)]);
    assert.ok(h.slept[0]! < h.slept[1]! && h.slept[1]! < h.slept[2]!);
    assert.match(h.err[0]!, /attempt 1 failed: connect ECONNREFUSED.*retrying in/);
  });

  it('honours Retry-After', async () => {
    const h = harness([{ ...BUSY, retryAfterMs: 7000 }, OK]);
    assert.equal(await main(S, h.deps), 0);
    assert.ok(h.slept[0]! >= 7000 && h.slept[0]! <= 7000 * 1.2, `slept ${h.slept[0]}`);
  });

  it('gives up when --wait is spent: exit 5 naming the last error', async () => {
    const h = harness([BUSY]);
    assert.equal(await main([...S, '--wait', '60s'], h.deps), EXIT.gaveUp);
    const total = h.slept.reduce((a, b) => a + b, 0);
    assert.equal(total, 60_000, 'the last sleep is cut to the deadline');
    assert.match(h.err.at(-1)!, /gave up after 60\.0s and \d+ attempts: .*503 storage_unavailable/);
  });

  it('gives up at once when Retry-After is beyond --wait', async () => {
    const h = harness([{ ...BUSY, retryAfterMs: 120_000 }]);
    assert.equal(await main([...S, '--wait', '30s'], h.deps), EXIT.gaveUp);
    assert.equal(h.sent.length, 1);
    assert.match(h.err.at(-1)!, /retry after 120\.0s, beyond --wait/);
  });

  it('--wait 0 makes exactly one attempt with the full --timeout', async () => {
    const h = harness([BUSY]);
    assert.equal(await main([...S, '--wait', '0', '--timeout', '3s'], h.deps), EXIT.gaveUp);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0]!.timeoutMs, 3000);
  });

  it('cuts an attempt timeout to the time left, never below one second', async () => {
    const seen: number[] = [];
    let clock = 0;
    const r = await withRetry(
      async (t) => {
        seen.push(t);
        return BUSY;
      },
      { waitMs: 5000, timeoutMs: 10_000 },
      {
        now: () => clock,
        sleep: async (ms) => void (clock += ms),
        random: () => 1,
        log: () => undefined,
      },
    );
    assert.equal(r.kind, 'gave-up');
    assert.equal(seen[0], 5000);
    assert.ok(seen.every((t) => t >= 1000 && t <= 5000));
  });

  it('waits out a network that is not up yet (no route, DNS not ready)', async () => {
    let calls = 0;
    const h = harness([OK], {
      source: async () => {
        if (++calls < 3)
          throw Object.assign(new Error('connect ENETUNREACH'), { code: 'ENETUNREACH' });
        return '10.0.0.5';
      },
    });
    assert.equal(await main(S, h.deps), 0);
    assert.equal(calls, 3);
    assert.match(h.err[0]!, /network not ready/);
  });

  it('--quiet keeps stderr free of progress lines', async () => {
    const h = harness([BUSY, OK]);
    assert.equal(await main([...S, '--quiet'], h.deps), 0);
    assert.deepEqual(h.err, []);
  });

  it('backoff doubles from 0.5 s with jitter and is capped at 30 s', () => {
    assert.equal(backoffMs(1, 0), 250);
    assert.equal(backoffMs(1, 1), 500);
    assert.equal(backoffMs(2, 1), 1000);
    assert.equal(backoffMs(20, 1), MAX_BACKOFF_MS);
    assert.equal(backoffMs(20, 0), MAX_BACKOFF_MS / 2);
  });
});

describe('ztp register: final answers', () => {
  it('a 4xx exits 4 at once with the problem detail and code', async () => {
    const h = harness([
      {
        kind: 'rejected',
        status: 400,
        code: 'invalid_ip',
        detail: 'ip must be an IPv4 or IPv6 address',
      },
    ]);
    assert.equal(await main([...S, '--wait', '300s'], h.deps), EXIT.rejected);
    assert.equal(h.sent.length, 1);
    assert.deepEqual(h.slept, []);
    assert.match(h.err[0]!, /rejected the registration \(400 invalid_ip\): ip must be an IPv4/);
  });

  it('an untrusted certificate exits 6 and suggests --ca-file', async () => {
    const h = harness([{ kind: 'untrusted', reason: 'self-signed certificate' }]);
    assert.equal(await main(S, h.deps), EXIT.untrusted);
    assert.match(h.err[0]!, /cannot trust .*self-signed.*--ca-file/);
  });
});

describe('answer classification', () => {
  const problem = (status: number, code: string, detail: string) =>
    classify(
      status,
      { 'content-type': 'application/problem+json; charset=utf-8' },
      JSON.stringify({ status, code, detail, title: 'x', type: 'about:blank' }),
    );

  it('201/200 with a record are success', () => {
    const r = classify(
      201,
      {},
      JSON.stringify({ id: 'a', ip: '1.2.3.4', name: 'n', userdata: '' }),
    );
    assert.deepEqual(r, {
      kind: 'ok',
      created: true,
      record: { id: 'a', ip: '1.2.3.4', name: 'n', userdata: '' },
    });
    assert.equal(
      (classify(200, {}, '{"id":"a","ip":"1.2.3.4"}') as { created: boolean }).created,
      false,
    );
  });

  it('a 200 that is not a device record is a rejection (wrong server)', () => {
    const r = classify(200, { 'content-type': 'text/html' }, '<html>');
    assert.equal(r.kind, 'rejected');
  });

  it('408, 429 and 5xx are retried; Retry-After in seconds or as a date', () => {
    assert.equal(problem(408, 'x', 'slow').kind, 'retry');
    assert.equal(problem(500, 'internal_error', 'bug').kind, 'retry');
    const r = classify(429, { 'retry-after': '12' }, '');
    assert.deepEqual(r, {
      kind: 'retry',
      reason: 'server answered 429: HTTP 429',
      retryAfterMs: 12_000,
    });
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('whenever', now), undefined);
  });

  it('other 4xx are rejections carrying code and detail; redirects name the target', () => {
    assert.deepEqual(problem(401, 'unauthorized', 'a bearer token is required'), {
      kind: 'rejected',
      status: 401,
      code: 'unauthorized',
      detail: 'a bearer token is required',
    });
    const plain = classify(404, { 'content-type': 'text/plain' }, 'Not here');
    assert.deepEqual(plain, { kind: 'rejected', status: 404, detail: 'Not here' });
    const moved = classify(301, { location: 'https://ztp.example/' }, '');
    assert.match((moved as { detail: string }).detail, /redirects to https:\/\/ztp\.example\//);
  });

  it('parses durations with their unit, as ztp serve does; a bare number is refused', () => {
    assert.equal(parseDurationOption('wait', '300s'), 300_000);
    assert.equal(parseDurationOption('wait', '2.5s'), 2500);
    assert.equal(parseDurationOption('wait', '500ms'), 500);
    assert.equal(parseDurationOption('wait', '5m'), 300_000);
    assert.equal(parseDurationOption('wait', '1h'), 3_600_000);
    assert.equal(parseDurationOption('wait', '0'), 0);
    assert.throws(() => parseDurationOption('wait', '-1'), /--wait/);
    assert.throws(() => parseDurationOption('timeout', '10'), /'10' has no unit: write e.g. 10s/);
  });
});

describe('documentation', () => {
  const page = readFileSync(new URL('../../docs/devices.md', import.meta.url), 'utf8');

  it('docs/devices.md and the sh client know every option, variable and exit code', () => {
    for (const o of CLIENT_OPTIONS) {
      assert.ok(page.includes(`\`--${o.flag}`), `docs/devices.md documents --${o.flag}`);
      assert.ok(SHELL_CLIENT.includes(`--${o.flag}`), `sh client knows --${o.flag}`);
      if (o.env !== undefined) {
        assert.ok(page.includes(`\`${o.env}\``), `docs/devices.md documents ${o.env}`);
        assert.ok(SHELL_CLIENT.includes(o.env), `sh client reads ${o.env}`);
      }
    }
    for (const [code] of EXIT_CODE_HELP) {
      assert.match(
        page,
        new RegExp(`\\n\\| ${code} +\\|`),
        `docs/devices.md explains exit ${code}`,
      );
      assert.match(SHELL_CLIENT, new RegExp(`\\n  ${code}  `), `sh --help explains exit ${code}`);
    }
  });
});

describe('one attempt over a real socket', () => {
  const spec = (url: string, extra: Partial<AttemptSpec> = {}): AttemptSpec => ({
    url: new URL(url),
    body: '{"ip":"10.0.0.5","name":"n","userdata":""}',
    timeoutMs: 2000,
    userAgent: 'ztp-client/test',
    ...extra,
  });

  it('sends the JSON body with the bearer token and reads the record', async () => {
    let seen: { req: IncomingMessage; body: string } | undefined;
    const srv = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen = { req, body };
        if (req.url === '/busy/ztp/register/x') {
          res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '3' });
          res.end('{"code":"storage_unavailable","detail":"try later"}');
          return;
        }
        if (req.url === '/slow/ztp/register/x') return; // never answers
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":"x","ip":"10.0.0.5","name":"n","userdata":""}');
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    try {
      const ok = await attempt(spec(`${base}/ztp/register/x`, { token: 't0k' }));
      assert.deepEqual(ok, {
        kind: 'ok',
        created: true,
        record: { id: 'x', ip: '10.0.0.5', name: 'n', userdata: '' },
      });
      assert.equal(seen!.req.method, 'PUT');
      assert.equal(seen!.req.headers.authorization, 'Bearer t0k');
      assert.equal(seen!.req.headers['content-type'], 'application/json');
      assert.equal(seen!.req.headers['user-agent'], 'ztp-client/test');
      assert.equal(seen!.body, '{"ip":"10.0.0.5","name":"n","userdata":""}');

      const busy = await attempt(spec(`${base}/busy/ztp/register/x`));
      assert.deepEqual(busy, {
        kind: 'retry',
        reason: 'server answered 503 storage_unavailable: try later',
        retryAfterMs: 3000,
      });

      const slow = await attempt(spec(`${base}/slow/ztp/register/x`, { timeoutMs: 200 }));
      assert.deepEqual(slow, { kind: 'retry', reason: 'no answer within 0.2s' });
    } finally {
      srv.closeAllConnections();
      srv.close();
    }
    const refused = await attempt(spec(base));
    assert.equal(refused.kind, 'retry');
    assert.match((refused as { reason: string }).reason, /ECONNREFUSED/);
  });
});
