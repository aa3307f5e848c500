/**
 * `ztp report TYPE [MESSAGE]` end to end: `node bin/ztp.mjs report` and the bundled
 * dist/ztp-client.mjs against a real `ztp serve` on loopback.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import {
  BIN,
  BUNDLE,
  clientEnv,
  clientPythons,
  getJson,
  makeToolbox,
  ROOT,
  run,
  serve,
  wgetOnlyToolbox,
  which,
  type Served,
} from './support.js';

const ztp = (args: string[]) => run(process.execPath, [BIN, ...args]);

describe('ztp report against a real server on 127.0.0.1', () => {
  let server: Served;
  before(async () => {
    server = await serve();
  });
  after(async () => {
    await server.stop();
  });

  it('reports progress of a registered device; the server keeps it and counts it', async () => {
    const id = '02:00:00:00:0a:01';
    const reg = await ztp(['register', '--server', server.url, '--id', id]);
    assert.equal(reg.code, 0, reg.stderr);
    const started = await ztp([
      'report',
      'bootstrap-initiated',
      '--server',
      server.url,
      '--id',
      id,
    ]);
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stdout, `reported bootstrap-initiated for ${id}\n`);
    const failed = await run(process.execPath, [
      BUNDLE,
      'report',
      'config-error',
      'commit failed: line 7 «vlan»',
      '--server',
      server.url,
      '--id',
      id,
      '--json',
    ]);
    assert.equal(failed.code, 0, failed.stderr);
    assert.deepEqual(JSON.parse(failed.stdout), {
      id,
      type: 'config-error',
      message: 'commit failed: line 7 «vlan»',
    });
    const listed = await getJson(`${server.url}/ztp/mng/devices/${id}/reports`);
    assert.deepEqual(
      (listed.body as { reports: { type: string; message: string }[] }).reports.map((r) => [
        r.type,
        r.message,
      ]),
      [
        ['config-error', 'commit failed: line 7 «vlan»'],
        ['bootstrap-initiated', ''],
      ],
    );
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^ztp_reports_total\{type="config-error"\} 1$/m);
  });

  it('refuses an unknown type before sending, and says when the server refuses', async () => {
    const bad = await ztp(['report', 'ztp-complete', '--server', server.url, '--id', 'x1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /'ztp-complete' is not an RFC 8572 progress type/);
    const none = await ztp(['report', '--server', server.url]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /TYPE is required/);
    const unknown = await ztp([
      'report',
      'bootstrap-complete',
      '--server',
      server.url,
      '--id',
      'never-registered',
    ]);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /the server rejected the report \(404 device_not_found\)/);
  });
});

describe('ztp_client.py report against a real server on 127.0.0.1', () => {
  const { found } = clientPythons();
  let server: Served;
  before(async () => {
    server = await serve();
  });
  after(async () => {
    await server.stop();
  });

  for (const python of found) {
    it(`Python ${python.version}: reports progress, refuses an unknown type`, async () => {
      const py = (args: string[]) =>
        run(python.path, [join(ROOT, 'src/client/ztp_client.py'), ...args]);
      const id = `02:00:00:00:0b:${python.version.split('.')[1]!.padStart(2, '0')}`;
      const reg = await py(['--server', server.url, '--id', id]);
      assert.equal(reg.code, 0, reg.stderr);
      const done = await py([
        'report',
        'bootstrap-error',
        'no space left «/»',
        '--server',
        server.url,
        '--id',
        id,
      ]);
      assert.equal(done.code, 0, done.stderr);
      assert.equal(done.stdout, `reported bootstrap-error for ${id}\n`);
      const json = await py([
        'report',
        'informational',
        '--server',
        server.url,
        '--id',
        id,
        '--json',
      ]);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), { id, type: 'informational', message: '' });
      const listed = await getJson(`${server.url}/ztp/mng/devices/${id}/reports`);
      assert.deepEqual(
        (listed.body as { reports: { type: string; message: string }[] }).reports.map((r) => [
          r.type,
          r.message,
        ]),
        [
          ['informational', ''],
          ['bootstrap-error', 'no space left «/»'],
        ],
      );
      const bad = await py(['report', 'done', '--server', server.url, '--id', id]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /'done' is not an RFC 8572 progress type/);
      const unknown = await py([
        'report',
        'bootstrap-complete',
        '--server',
        server.url,
        '--id',
        'nobody',
      ]);
      assert.equal(unknown.code, 4);
      assert.match(unknown.stderr, /rejected the report \(404 device_not_found\)/);
    });
  }
});

describe('ztp-client.sh report against a real server on 127.0.0.1', () => {
  const tmp = tempDir('ztp-sh-report-');
  let server: Served;
  let script: string;
  before(async () => {
    server = await serve();
    script = join(tmp.dir, 'client.sh');
    execFileSync('curl', ['-fsS', '-o', script, `${server.url}/ztp/client.sh`]);
  });
  after(async () => {
    await server.stop();
    tmp.cleanup();
  });

  const reports = async (id: string) =>
    (
      (await getJson(`${server.url}/ztp/mng/devices/${id}/reports`)).body as {
        reports: { type: string; message: string }[];
      }
    ).reports.map((r) => [r.type, r.message]);

  // [label, the shell, PATH directory or undefined for the usual PATH]
  const variants: [string, () => { shell: string; args: string[]; path?: string } | undefined][] = [
    ['dash with curl', () => ({ shell: which('dash') ?? '/bin/sh', args: [] })],
    [
      'dash with GNU wget only',
      () => {
        const dir = wgetOnlyToolbox(join(tmp.dir, 'wget'));
        return dir === undefined
          ? undefined
          : { shell: which('dash') ?? '/bin/sh', args: [], path: dir };
      },
    ],
    [
      'busybox alone (wget POST, form body)',
      () => {
        const busybox = which('busybox');
        if (busybox === undefined) return undefined;
        const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n');
        const dir = makeToolbox(
          join(tmp.dir, 'busybox'),
          Object.fromEntries(applets.filter(Boolean).map((n) => [n, busybox])),
        );
        return { shell: busybox, args: ['sh'], path: dir };
      },
    ],
  ];

  for (const [label, variant] of variants) {
    it(`${label}: reports progress, refuses an unknown type`, async (t) => {
      const v = variant();
      if (v === undefined) {
        t.skip(`${label}: not installed`);
        return;
      }
      const env = clientEnv(v.path === undefined ? {} : { PATH: v.path });
      const sh = (args: string[]) => run(v.shell, [...v.args, script, ...args], { env });
      const id = `sh-${label.split(' ')[0]}-${label.length}`;
      const reg = await sh(['--id', id]);
      assert.equal(reg.code, 0, reg.stderr);
      const msg = 'apply failed: "vlan 7" & 100% ✓';
      const failed = await sh(['report', 'config-error', msg, '--id', id]);
      assert.equal(failed.code, 0, failed.stderr);
      assert.equal(failed.stdout, `reported config-error for ${id}\n`);
      const done = await sh(['report', 'bootstrap-complete', '--id', id, '--json']);
      assert.equal(done.code, 0, done.stderr);
      assert.deepEqual(JSON.parse(done.stdout), { id, type: 'bootstrap-complete', message: '' });
      assert.deepEqual(await reports(id), [
        ['bootstrap-complete', ''],
        ['config-error', msg],
      ]);
      const bad = await sh(['report', 'finished', '--id', id]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /'finished' is not an RFC 8572 progress type/);
      const unknown = await sh(['report', 'informational', '--id', 'nobody-here']);
      assert.equal(unknown.code, 4);
      assert.match(unknown.stderr, /rejected the report \(404/);
    });
  }
});
