/**
 * Signed and informative manager calls against real local managers: one written here from the
 * documented recipe, the documented example verifiers (Python, Node, openssl) and the minimal
 * manager of docs/service-manager.md, run as they are in docs/examples/.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { basicCall, callBuilder, type ManagerCall } from '../../src/triggers/manager-call.js';
import { ManagerClient, type ManagerClientOptions } from '../../src/triggers/manager-client.js';
import { ThreadedSender } from '../../src/triggers/sender-thread.js';
import { signatureHeader } from '../../src/triggers/signature.js';
import type { DeviceService } from '../../src/devices/service.js';
import { Signal } from '../signal.js';
import { harness, retried } from './setup.js';

const SECRET_A = 'current-secret-0123456789abcdef';
const SECRET_B = 'next-secret-fedcba9876543210';
const examples = new URL('../../docs/examples/', import.meta.url).pathname;
const python =
  process.env.ZTP_TEST_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A manager that records every request whole and answers 200; called(n) awaits the nth. */
async function recordingManager() {
  const received: Received[] = [];
  const arrived = new Signal();
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      res.end('ok');
      arrived.notify();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    called: (n: number, what: string) =>
      arrived.until(
        () => received.length >= n,
        () => `${what} (${received.length} calls so far)`,
      ),
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The documented recipe, written again from the docs (not from src/). */
function recipeValid(secret: string, r: Received, nowSeconds = Date.now() / 1000): boolean {
  const header = String(r.headers['ztp-signature'] ?? '');
  const fields = header.split(',').map((f) => f.split('=') as [string, string]);
  const t = fields.filter(([k]) => k === 't').map(([, v]) => v);
  if (t.length !== 1 || Math.abs(nowSeconds - Number(t[0])) > 300) return false;
  const mac = createHmac('sha256', secret)
    .update(`${t[0]}.${r.method} ${r.url}.`)
    .update(r.body)
    .digest('hex');
  return fields.some(([k, v]) => k === 'v1' && v === mac);
}

function client(url: string, o: Partial<ManagerClientOptions> = {}): ManagerClient {
  return new ManagerClient({ managerUrl: url, timeoutMs: 3000, connections: 2, ...o });
}

const device: ManagerCall = {
  key: '6f1c2a9e-0000-4000-8000-000000000001',
  ip: '2001:db8::7',
  type: 'registered',
  at: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
  device: {
    id: 'aa:bb:cc:dd:ee:01',
    ip: '2001:db8::7',
    previousIp: null,
    name: 'rack 4 — Schaltkasten Ü',
    userdata: 'role=leaf',
    aliases: [],
  },
  report: null,
};

describe('the seed call', () => {
  it('is byte for byte the request of old when no format, template or secret is set', async () => {
    const bytes: Buffer[] = [];
    const server = createTcpServer((s) =>
      s.on('data', (d) => {
        bytes.push(d);
        s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const c = client(`http://127.0.0.1:${port}/base/`);
    try {
      const r = await c.send(basicCall({ ip: 'fe80::1', key: 'k-1' }));
      assert.equal(r.kind === 'response' && r.status, 200);
      assert.equal(
        Buffer.concat(bytes).toString('latin1'),
        'GET /base/api/exec?ip=fe80%3A%3A1 HTTP/1.1\r\n' +
          `host: 127.0.0.1:${port}\r\nconnection: keep-alive\r\n` +
          'idempotency-key: k-1\r\nuser-agent: ztp-trigger\r\n\r\n',
      );
    } finally {
      await c.close();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('signed calls to a real manager', () => {
  it('signs a template GET with both secrets during a rotation; each alone verifies it', async () => {
    const m = await recordingManager();
    const c = client(`${m.url}/provision/{name}?ip={ip}&id={id}`, {
      secrets: [SECRET_A, SECRET_B],
    });
    try {
      await c.send(device);
      const r = m.received[0]!;
      assert.equal(r.method, 'GET');
      assert.equal(
        r.url,
        '/provision/rack%204%20%E2%80%94%20Schaltkasten%20%C3%9C?ip=2001%3Adb8%3A%3A7&id=aa%3Abb%3Acc%3Add%3Aee%3A01',
      );
      assert.equal(r.headers['ztp-event-id'], device.key);
      assert.equal(r.headers['idempotency-key'], device.key);
      assert.match(String(r.headers['ztp-signature']), /^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
      assert.ok(recipeValid(SECRET_A, r), 'verifies with the current secret');
      assert.ok(recipeValid(SECRET_B, r), 'verifies with the next secret');
      assert.ok(!recipeValid('some-other-secret-entirely', r), 'not with another');
      assert.ok(!recipeValid(SECRET_A, { ...r, url: r.url.replace('7&', '8&') }), 'tampered ip');
    } finally {
      await c.close();
      await m.close();
    }
  });

  it('POSTs the json event through the sender thread, signed over the exact body', async () => {
    const m = await recordingManager();
    const sender = new ThreadedSender({
      managerUrl: `${m.url}/hooks/ztp`,
      format: 'json',
      secrets: [SECRET_A],
      timeoutMs: 3000,
      connections: 2,
    });
    try {
      const r0 = await sender.send(device);
      assert.equal(r0.kind === 'response' && r0.status, 200);
      const r = m.received[0]!;
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/hooks/ztp');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['ztp-event-id'], device.key);
      assert.deepEqual(JSON.parse(r.body.toString('utf8')), {
        event_id: device.key,
        type: 'registered',
        at: '2025-01-02T03:04:05.678Z',
        device: {
          id: 'aa:bb:cc:dd:ee:01',
          ip: '2001:db8::7',
          previous_ip: null,
          name: 'rack 4 — Schaltkasten Ü',
          userdata: 'role=leaf',
          aliases: [],
        },
      });
      assert.ok(recipeValid(SECRET_A, r));
      const tampered = Buffer.from(r.body.toString('utf8').replace('2001:db8::7', '10.6.6.6'));
      assert.ok(!recipeValid(SECRET_A, { ...r, body: tampered }), 'a tampered body fails');
    } finally {
      await sender.close();
      await m.close();
    }
  });
});

describe('the example verifiers of docs/service-manager.md', () => {
  const doc = readFileSync(new URL('../../docs/service-manager.md', import.meta.url), 'utf8');
  let signed: Received;
  before(async () => {
    const m = await recordingManager();
    const c = client(`${m.url}/hooks/ztp?src={id}`, {
      format: 'json',
      secrets: [SECRET_A, SECRET_B],
    });
    await c.send(device);
    await c.close();
    await m.close();
    signed = m.received[0]!;
  });

  const verifiers: [string, string[]][] = [
    ['verify-signature.py', [python, `${examples}verify-signature.py`]],
    ['verify-signature.mjs', [process.execPath, `${examples}verify-signature.mjs`]],
    ['verify-signature.sh', ['sh', `${examples}verify-signature.sh`]],
  ];
  const run = (cmd: string[], secret: string, header: string, r: Received, body = r.body) =>
    spawnSync(cmd[0]!, [...cmd.slice(1), header, r.method, r.url], {
      input: body,
      encoding: 'utf8',
      env: { ...process.env, ZTP_MANAGER_SECRET: secret },
    });

  for (const [file, cmd] of verifiers) {
    it(`${file}: is in the docs verbatim, accepts either secret, refuses tampering and replays`, () => {
      assert.ok(doc.includes(readFileSync(`${examples}${file}`, 'utf8').trimEnd()), 'verbatim');
      const header = String(signed.headers['ztp-signature']);
      for (const secret of [SECRET_A, SECRET_B]) {
        const ok = run(cmd, secret, header, signed);
        assert.equal(ok.status, 0, ok.stderr);
        assert.equal(ok.stdout.trim(), 'valid');
      }
      assert.equal(run(cmd, 'another-secret-0123456789', header, signed).status, 1);
      const tampered = Buffer.from(signed.body.toString('utf8').replace('registered', 'approved'));
      assert.equal(run(cmd, SECRET_A, header, signed, tampered).stdout.trim(), 'invalid');
      const resign = (ageSeconds: number) =>
        signatureHeader(
          [SECRET_A],
          Math.floor(Date.now() / 1000) - ageSeconds,
          signed.method,
          signed.url,
          signed.body.toString('utf8'),
        );
      assert.equal(run(cmd, SECRET_A, resign(120), signed).stdout.trim(), 'valid', 'in the window');
      const old = run(cmd, SECRET_A, resign(301), signed);
      assert.equal(old.stdout.trim(), 'invalid', 'older than 5 minutes');
      assert.equal(old.status, 1);
      assert.equal(run(cmd, SECRET_A, resign(-330), signed).stdout.trim(), 'invalid', 'future');
    });
  }
});

describe('the minimal manager of docs/service-manager.md', () => {
  const file = `${examples}manager.mjs`;
  const out: string[] = [];
  const printed = new Signal();
  let url = '';
  let child: ReturnType<typeof spawn>;
  before(async () => {
    child = spawn(process.execPath, [file], {
      env: { ...process.env, PORT: '0', ZTP_MANAGER_SECRET: SECRET_B },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out.push(...d.split('\n'));
      printed.notify();
    });
    const port = await printed.until(
      () => out.map((l) => /listening on port (\d+)/.exec(l)?.[1]).find(Boolean),
      'the manager to listen',
      10_000,
    );
    url = `http://127.0.0.1:${port}`;
  });
  after(() => child.kill());

  it('is in the docs verbatim and about 20 lines', () => {
    const text = readFileSync(file, 'utf8');
    assert.ok(
      readFileSync(new URL('../../docs/service-manager.md', import.meta.url), 'utf8').includes(
        text.trimEnd(),
      ),
    );
    assert.ok(text.trimEnd().split('\n').length <= 35);
  });

  it('acts once per event on signed calls of both forms and refuses a wrong signature', async () => {
    const json = client(url, { format: 'json', secrets: [SECRET_A, SECRET_B] });
    const get = client(url, { secrets: [SECRET_B] });
    const wrong = client(url, { secrets: ['not-the-managers-secret-000'] });
    const forward = client(url, { secrets: [SECRET_B], reportForwardUrl: `${url}/reports` });
    try {
      const status = async (c: ManagerClient, call: ManagerCall) => {
        const r = await c.send(call);
        return r.kind === 'response' ? r.status : r.error;
      };
      assert.equal(await status(json, device), 200);
      assert.equal(await status(json, device), 200, 'a retry is accepted…');
      assert.equal(await status(get, basicCall({ ip: '10.1.2.3', key: 'k-get' })), 200);
      assert.equal(await status(wrong, basicCall({ ip: '10.6.6.6', key: 'k-bad' })), 401);
      const report: ManagerCall = {
        ...device,
        key: 'k-report',
        type: 'report',
        report: { type: 'bootstrap-error', message: 'disk full' },
      };
      assert.equal(await status(forward, report), 200);
      await printed.until(() => out.some((l) => l.includes('k-report')), 'the report logged');
      const acted = out.filter((l) => l.startsWith('provision') || l.startsWith('report'));
      assert.deepEqual(acted, [
        `provision 2001:db8::7 (registered, event ${device.key})`,
        'provision 10.1.2.3 (registered, event k-get)',
        'report bootstrap-error from 2001:db8::7 (report, event k-report)',
      ]);
    } finally {
      await Promise.all([json.close(), get.close(), wrong.close(), forward.close()]);
    }
  });
});

describe('the dispatcher builds informative calls', () => {
  it('registered, then retriggered by hand, with the name and userdata read at call time', async () => {
    const m = await recordingManager();
    const ref: { service?: DeviceService } = {};
    const h = await harness({
      managerUrl: () => `${m.url}/ztp/{id}`,
      client: { format: 'json', secrets: [SECRET_A] },
      buildCall: callBuilder(async (id) => {
        const d = await ref.service!.get(id);
        return { name: d.name, userdata: d.userdata, lastSeen: d.lastSeen };
      }, true),
    });
    ref.service = h.t.service;
    try {
      const reg = await h.t.app.inject({
        method: 'PUT',
        url: '/ztp/register/AA-BB-CC-DD-EE-02',
        payload: { ip: '10.0.0.2', name: 'leaf 2', userdata: 'rack=7' },
      });
      assert.equal(reg.statusCode, 201);
      await m.called(1, 'the registration call');
      const again = await h.t.app.inject({
        method: 'POST',
        url: '/ztp/mng/aa:bb:cc:dd:ee:02/trigger',
      });
      assert.equal(again.statusCode, 202);
      await m.called(2, 'the manual trigger call');
      const events = m.received.map((r) => {
        assert.ok(recipeValid(SECRET_A, r));
        assert.equal(r.url, '/ztp/aa%3Abb%3Acc%3Add%3Aee%3A02');
        return JSON.parse(r.body.toString('utf8')) as {
          type: string;
          event_id: string;
          device: unknown;
        };
      });
      assert.deepEqual(
        events.map((e) => e.type),
        ['registered', 'retriggered'],
      );
      assert.deepEqual(events[0]!.device, {
        id: 'aa:bb:cc:dd:ee:02',
        ip: '10.0.0.2',
        previous_ip: null,
        name: 'leaf 2',
        userdata: 'rack=7',
        aliases: [],
      });
      assert.equal(events[0]!.event_id, m.received[0]!.headers['idempotency-key']);
      assert.notEqual(events[0]!.event_id, events[1]!.event_id);
    } finally {
      await h.close();
      await m.close();
    }
  });

  it('retries (no call) when the device cannot be read, and the call goes out once it can', async () => {
    const m = await recordingManager();
    let failing = true;
    const h = await harness({
      managerUrl: () => m.url,
      client: { format: 'json' },
      buildCall: callBuilder(async () => {
        if (failing) throw new Error('database down');
        return undefined; // deleted meanwhile: name and userdata null
      }, true),
    });
    try {
      assert.equal(await h.register('AA-BB-CC-DD-EE-03', '10.0.0.3'), 201);
      const t = await h.published(retried('aa:bb:cc:dd:ee:03'));
      assert.match(t.lastError!, /could not read the device for the call: database down/);
      assert.equal(m.received.length, 0);
      failing = false;
      await m.called(1, 'the call after the lookup recovers');
      const body = JSON.parse(m.received[0]!.body.toString('utf8')) as {
        device: { name: unknown };
      };
      assert.equal(body.device.name, null);
      assert.equal(m.received[0]!.headers['ztp-signature'], undefined, 'unsigned without a secret');
    } finally {
      await h.close();
      await m.close();
    }
  });
});
