/**
 * Several `ztp serve` replicas on one PostgreSQL database, as real processes with a real local
 * service manager: concurrent registrations of the same devices through both replicas, a replica
 * killed with SIGKILL mid-load, and PostgreSQL itself stopped and started mid-load.
 *
 * Registrations are chains: each device is registered over and over, one request after the
 * other, alternating replicas, each time with a new ip (10.<device>.<seq>), so the manager's
 * calls tell which registration they carry. What must hold:
 * - nothing acknowledged (2xx) is lost: it is in the device's history (--history-limit 1000),
 *   the device ends with the ip of its last acknowledged registration;
 * - every trigger is delivered: the manager gets the final ip of every device, nothing stays
 *   pending, and per device the calls arrive in registration order;
 * - an Idempotency-Key reaches the manager twice only when a replica died mid-delivery.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from '../helpers.js';
import { createTestDatabase, lockForRestart, PG_SKIP_MESSAGE } from '../pg-helpers.js';
import { Signal } from '../signal.js';
import { startServe, type ServeProcess } from './server-process.js';

const run = promisify(execFile);
const db = await createTestDatabase('replicas', { restarts: true });
after(() => db?.drop());

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A service manager that records every call and answers 200 after `delayMs`. */
class Manager {
  /** replica: the first path segment (each replica is given its own manager URL). */
  calls: { ip: string; key: string; at: number; replica: string }[] = [];
  delayMs = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly arrived = new Signal();
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const ip = url.searchParams.get('ip') ?? '';
      const key = String(req.headers['idempotency-key'] ?? '');
      this.calls.push({ ip, key, at: Date.now(), replica: url.pathname.split('/')[1] ?? '' });
      setTimeout(() => res.end('ok'), this.delayMs);
      this.arrived.notify();
    });
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  /** Resolves once `test` holds for the calls (checked as each one arrives). */
  until(test: (calls: Manager['calls']) => boolean, what: string, ms: number): Promise<unknown> {
    return this.arrived.until(() => test(this.calls), what, ms);
  }

  /** The next call from the replica to arrive (it is held for `delayMs`). */
  nextCall(replica: string, ms = 10_000): Promise<unknown> {
    const seen = this.calls.length;
    return this.until(
      (calls) => calls.slice(seen).some((c) => c.replica === replica),
      `a call from ${replica}`,
      ms,
    );
  }

  /** Keys sent more than once, with the replicas that sent them, in order. */
  duplicates(): Map<string, string[]> {
    const byKey = new Map<string, string[]>();
    for (const c of this.calls) byKey.set(c.key, [...(byKey.get(c.key) ?? []), c.replica]);
    return new Map([...byKey].filter(([, senders]) => senders.length > 1));
  }
}

const ipOf = (device: number, seq: number) => `10.${device}.${seq >> 8}.${seq & 255}`;
const idOf = (device: number) => `dev-${String(device).padStart(3, '0')}`;
function parseIp(ip: string): { device: number; seq: number } {
  const [, d, hi, lo] = ip.split('.').map(Number);
  return { device: d!, seq: (hi! << 8) + lo! };
}

interface Outcome {
  device: number;
  seq: number;
  replica: number;
  /** HTTP status, or 'error' (connection refused/reset) or 'timeout' (no answer in 15 s). */
  status: number | 'error' | 'timeout';
  code?: string;
}

async function register(url: string, device: number, seq: number): Promise<Outcome['status']> {
  try {
    const res = await fetch(`${url}/ztp/register/${idOf(device)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ip: ipOf(device, seq) }),
      signal: AbortSignal.timeout(15_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch (e) {
    return (e as Error).name === 'TimeoutError' ? 'timeout' : 'error';
  }
}

const acked = (o: Outcome) => typeof o.status === 'number' && o.status >= 200 && o.status < 300;

/** Notified at every answer a chain gets (awaited while the load runs). */
const answered = new Signal();

/**
 * Runs one chain per device until `until()` says stop, then one last registration through
 * `finalReplica`. `pick` chooses the replica for each request. Sequence numbers start at
 * `firstSeq`; at most 900 per chain (all fit in a history of 1000). The outcomes are added to
 * `out` as they come.
 */
async function chains(
  replicas: ServeProcess[],
  devices: number,
  until: () => boolean,
  pick: (device: number, seq: number) => number,
  finalReplica = 0,
  firstSeq = 0,
  out: Outcome[] = [],
): Promise<Outcome[]> {
  const add = (o: Outcome) => {
    out.push(o);
    answered.notify();
  };
  await Promise.all(
    Array.from({ length: devices }, async (_, device) => {
      let seq = firstSeq;
      while (!until() && seq < 900) {
        const replica = pick(device, seq);
        const status = await register(replicas[replica]!.url, device, seq);
        add({ device, seq, replica, status });
        seq++;
        if (status !== 200 && status !== 201) await sleep(50); // a client backs off
      }
      add({
        device,
        seq,
        replica: finalReplica,
        status: await register(replicas[finalReplica]!.url, device, seq),
      });
    }),
  );
  return out;
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Nothing acknowledged lost: every 2xx is in the history; the last acknowledged ip is current. */
async function assertNothingAckedLost(url: string, outcomes: Outcome[], devices: number) {
  for (let device = 0; device < devices; device++) {
    const mine = outcomes.filter((o) => o.device === device);
    const ok = mine.filter(acked);
    const { status, body } = await getJson(`${url}/ztp/mng/${idOf(device)}`);
    assert.equal(status, 200);
    const history = (body.history as { ip: string }[]).map((h) => h.ip);
    for (const o of ok)
      assert.ok(
        history.includes(ipOf(device, o.seq)),
        `acknowledged ${idOf(device)}#${o.seq} lost`,
      );
    const registrations = body.registrations as number;
    assert.ok(registrations >= ok.length && registrations <= mine.length, `${idOf(device)} count`);
    const last = ok.reduce((a, b) => (b.seq > a.seq ? b : a));
    assert.equal(last.seq, mine.length - 1, 'the final registration was acknowledged');
    assert.equal(body.ip, ipOf(device, last.seq));
  }
}

/** Every trigger delivered: each device's final ip reached the manager and nothing is pending. */
async function assertAllDelivered(manager: Manager, outcomes: Outcome[], devices: number) {
  const finals = new Set(
    Array.from({ length: devices }, (_, device) =>
      ipOf(device, Math.max(...outcomes.filter((o) => o.device === device).map((o) => o.seq))),
    ),
  );
  await manager.until(
    (calls) => {
      const called = new Set(calls.map((c) => c.ip));
      return [...finals].every((ip) => called.has(ip));
    },
    "every device's final ip at the manager",
    45_000,
  );
  // The replicas record the last outcomes a moment after the manager answered them.
  await eventually(
    async () => {
      const rows = await db!.query(
        "SELECT count(*)::int AS n FROM triggers WHERE state <> 'delivered'",
      );
      return (rows.rows[0] as { n: number }).n === 0;
    },
    15_000,
    'every trigger recorded as delivered',
  );
}

/**
 * Per device, the manager saw registrations in order (coalescing may skip some, never reorder).
 * `abandoned`: ips of calls a replica gave up at its timeout (logged); such a call may reach a
 * loaded manager late, after a newer one (docs/service-manager.md, "Ordering"), so it is not held to the order.
 */
function assertPerDeviceOrder(manager: Manager, fromSeq = 0, abandoned = new Set<string>()) {
  const lastSeq = new Map<number, number>();
  for (const c of manager.calls) {
    const { device, seq } = parseIp(c.ip);
    if (seq < fromSeq || abandoned.has(c.ip)) continue;
    const prev = lastSeq.get(device) ?? -1;
    assert.ok(seq >= prev, `${idOf(device)}: call for #${seq} after #${prev}`);
    lastSeq.set(device, seq);
  }
}

/** Trust authentication ignores it, but it is in the URL: it must never reach a log line. */
const PASSWORD = 'pw-Secr3t-6e1f';
function withPassword(url: string): string {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.href;
}

const serveArgs = (managerUrl: string) => [
  '--database',
  withPassword(db!.url),
  '--manager-url',
  managerUrl,
  '--trigger-poll-interval',
  '100ms',
  // Generous for a loaded 2-core machine (a timed-out call is retried: a legitimate duplicate).
  '--trigger-timeout',
  '5s',
  '--trigger-lease',
  '10s',
  '--trigger-initial-backoff',
  '100ms',
  '--trigger-max-backoff',
  '500ms',
  '--history-limit',
  '1000',
  '--log-level',
  'info', // startServe waits for the 'ztp listening' line
];

function summary(t: TestContext, outcomes: Outcome[], manager: Manager) {
  const by = new Map<string, number>();
  for (const o of outcomes) by.set(String(o.status), (by.get(String(o.status)) ?? 0) + 1);
  t.diagnostic(
    `registrations by status: ${JSON.stringify(Object.fromEntries(by))}; manager calls: ${manager.calls.length}; duplicate keys: ${manager.duplicates().size}`,
  );
}

describe('several replicas on one PostgreSQL', { skip: db ? false : PG_SKIP_MESSAGE }, () => {
  let manager: Manager;
  let replicas: ServeProcess[] = [];
  before(async () => {
    manager = await new Manager().start();
  });
  /** Every log line of every replica started so far (checked for the password). */
  const logs: string[][] = [];
  after(async () => {
    await Promise.all(replicas.map((r) => r.kill9()));
    await manager.stop();
  });
  after(() => {
    const lines = logs.flat();
    assert.ok(
      lines.some((l) => l.includes('postgres://postgres:***@')),
      'the URL is logged redacted',
    );
    const leaked = lines.filter((l) => l.includes(PASSWORD));
    assert.deepEqual(leaked, [], 'the database password never appears in a log line');
  });
  async function fresh() {
    await Promise.all(replicas.map((r) => r.stop()));
    replicas = [];
    await db!.reset();
    manager.calls = [];
    manager.delayMs = 0;
    // Started together: their migrations meet at the advisory lock. Each has its own manager
    // URL (/r0, /r1), so the manager knows who sent a call. Slow start-ups (a loaded machine)
    // get 30 s; one that fails does not leave the other running.
    const started = await Promise.allSettled(
      ['r0', 'r1'].map((name) => startServe(serveArgs(`${manager.url}/${name}`), {}, 30_000)),
    );
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    logs.push(...replicas.map((r) => r.lines));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return replicas;
  }

  /**
   * Keys the manager got more than once that no replica death explains must come from a call
   * that timed out and was retried (at-least-once), which the replica logged.
   */
  function timedOutIps(): Set<string> {
    const ips = new Set<string>();
    for (const r of replicas)
      for (const line of r.lines)
        if (line.includes('trigger attempt failed') && line.includes('timeout'))
          ips.add((JSON.parse(line) as { ip: string }).ip);
    return ips;
  }

  it('concurrent registrations of the same ids through both end consistent, every trigger delivered once', async (t) => {
    const [a, b] = await fresh();
    const DEVICES = 40;
    // The first registration of each device races through both replicas at once.
    const races = await Promise.all(
      Array.from({ length: DEVICES }, (_, d) =>
        Promise.all([register(a!.url, d, 0), register(b!.url, d, 1)]),
      ),
    );
    for (const statuses of races)
      assert.deepEqual([...statuses].sort(), [200, 201], 'created exactly once');
    let rounds = 0;
    const rest = await chains(
      replicas,
      DEVICES,
      () => rounds++ > DEVICES * 10,
      (_, seq) => seq % 2,
      0,
      2,
    );
    assert.ok(rest.every(acked), 'every registration acknowledged');
    summary(t, rest, manager);
    for (let device = 0; device < DEVICES; device++) {
      const chain = rest.filter((o) => o.device === device);
      const { body } = await getJson(`${a!.url}/ztp/mng/${idOf(device)}`);
      assert.equal(body.registrations, 2 + chain.length, 'every registration counted once');
      assert.equal(body.ip, ipOf(device, 1 + chain.length));
      const fromB = await getJson(`${b!.url}/ztp/check/${idOf(device)}`);
      assert.equal(fromB.body.ip, body.ip, 'both replicas answer the same');
    }
    await assertAllDelivered(manager, rest, DEVICES);
    const timedOut = timedOutIps();
    assertPerDeviceOrder(manager, 2, timedOut);
    // No replica died: a key reaches the manager twice only after a logged timeout (expected 0).
    for (const [key] of manager.duplicates()) {
      const ip = manager.calls.find((c) => c.key === key)!.ip;
      assert.ok(timedOut.has(ip), `key ${key} (${ip}) delivered twice without a timeout`);
    }
    for (const name of ['r0', 'r1'])
      assert.ok(
        manager.calls.some((c) => c.replica === name),
        `${name}'s dispatcher delivered some triggers`,
      );
  });

  it('a replica killed with kill -9 mid-load loses nothing acknowledged; its claims are delivered by the other', async (t) => {
    const [a, b] = await fresh();
    manager.delayMs = 300; // deliveries are in flight when the replica dies
    const DEVICES = 30;
    const started = Date.now();
    let killed = false;
    const answers: Outcome[] = [];
    const load = chains(
      replicas,
      DEVICES,
      () => Date.now() - started > 2500,
      (device, seq) => (!killed && (device + seq) % 2 === 0 ? 0 : 1),
      1,
      0,
      answers,
    );
    // Once A has taken a share of the load, and just as the manager receives (and holds) one of
    // its calls.
    await answered.until(
      () => answers.filter((o) => o.replica === 0 && acked(o)).length >= DEVICES,
      'registrations through replica A',
      30_000,
    );
    await manager.nextCall('r0');
    killed = true;
    await a!.kill9();
    const outcomes = await load;
    summary(t, outcomes, manager);
    assert.ok(
      outcomes.some((o) => o.replica === 0 && acked(o)),
      'replica A took load before',
    );
    assert.ok(
      outcomes.every((o) => acked(o) || (o.replica === 0 && o.status === 'error')),
      'only requests to the dead replica failed, and none hung',
    );
    await assertNothingAckedLost(b!.url, outcomes, DEVICES);
    await assertAllDelivered(manager, outcomes, DEVICES);
    const timedOut = timedOutIps();
    assertPerDeviceOrder(manager, 0, timedOut);
    const dups = manager.duplicates();
    t.diagnostic(`triggers delivered twice because their replica died mid-delivery: ${dups.size}`);
    // Each: first sent by the dead replica, then once by the survivor — or retried after a
    // logged timeout (a loaded machine), which is at-least-once by design.
    for (const [key, senders] of dups) {
      const ip = manager.calls.find((c) => c.key === key)!.ip;
      if (timedOut.has(ip)) continue;
      assert.deepEqual(
        senders,
        ['r0', 'r1'],
        `key ${key}: sent by the dead replica, then by the other`,
      );
    }
  });

  it('PostgreSQL stopped mid-load: 503s while it is away, full recovery after, nothing acknowledged lost', async (t) => {
    // Other test files must not be using the server while it is down: wait for them to finish.
    const lock = await lockForRestart();
    let a: ServeProcess;
    let b: ServeProcess;
    try {
      [a, b] = (await fresh()) as [ServeProcess, ServeProcess];
    } catch (e) {
      await lock.release();
      throw e;
    }
    const DEVICES = 20;
    let stopAfter = Infinity;
    const answers: Outcome[] = [];
    const load = chains(
      replicas,
      DEVICES,
      () => Date.now() > stopAfter,
      (device, seq) => (device + seq) % 2,
      0,
      0,
      answers,
    );
    await answered.until(
      () => answers.filter(acked).length >= 2 * DEVICES,
      'the load under way',
      30_000,
    );
    const cluster = (await run('ls', ['/etc/postgresql'])).stdout.trim();
    try {
      await run('pg_ctlcluster', [
        '--skip-systemctl-redirect',
        cluster,
        'main',
        'stop',
        '-m',
        'immediate',
      ]);
      for (const r of [a!, b!]) {
        const ready = await getJson(`${r.url}/readyz`);
        assert.equal(ready.status, 503);
        assert.equal(ready.body.code, 'storage_unavailable');
        const res = await fetch(`${r.url}/ztp/register/outage-probe`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: '{"ip":"192.0.2.1"}',
          signal: AbortSignal.timeout(15_000),
        });
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        assert.equal(((await res.json()) as { code: string }).code, 'storage_unavailable');
      }
      // Until the chains too have met the outage: a 503 for every device's chain, in number.
      await answered.until(
        () => answers.filter((o) => o.status === 503).length >= DEVICES,
        'the chains to be answered 503',
        30_000,
      );
    } finally {
      await run('pg_ctlcluster', ['--skip-systemctl-redirect', cluster, 'main', 'start']).catch(
        () => undefined,
      );
      await lock.release(); // gone with the server, unless it never stopped
    }
    for (const r of [a!, b!])
      await eventually(
        async () => (await getJson(`${r.url}/readyz`)).status === 200,
        30_000,
        'ready again',
      );
    stopAfter = Date.now() + 700;
    const outcomes = await load;
    summary(t, outcomes, manager);
    assert.ok(
      outcomes.some((o) => o.status === 503),
      'the outage was seen as 503s',
    );
    assert.ok(
      outcomes.every((o) => acked(o) || o.status === 503),
      'only 503s: no 500, no hang, no dropped connection',
    );
    await assertNothingAckedLost(a!.url, outcomes, DEVICES);
    await assertAllDelivered(manager, outcomes, DEVICES);
    assertPerDeviceOrder(manager, 0, timedOutIps());
    t.diagnostic(
      `keys delivered twice (a completion lost in the outage, redelivered after its lease): ${manager.duplicates().size}`,
    );
  });
});
