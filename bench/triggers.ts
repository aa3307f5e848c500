/**
 * Trigger delivery benchmark: a real `ztp serve` process and a local service manager, both on
 * 127.0.0.1.
 *
 *  1. Registers N devices (C at a time) and reports the registration throughput, the delivery
 *     rate, and the lag from each trigger's registration (its createdAt, taken just before the
 *     commit) to the manager receiving the call: p50/p99/max.
 *  2. Stops the manager (connections refused) for the outage, registers M more devices during
 *     it, brings the manager back, and reports how long the backlog takes to drain.
 *
 *   npm run bench:triggers -- [--devices 5000] [--concurrency 32] [--outage 60s]
 *                             [--outage-devices 2000] [--drain-timeout 10m] [-- <ztp serve flags>]
 *
 * The manager runs in this process (receipt times are taken in its request handler); the load
 * generator shares the process, so the lag figures include a little of its own scheduling.
 * Everything is bounded in time; the server and its temporary database are removed at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { parseDuration } from '../src/config.js';

const ROOT = new URL('..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const { values, positionals } = parseArgs({
  options: {
    devices: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '32' },
    outage: { type: 'string', default: '60s' },
    'outage-devices': { type: 'string', default: '2000' },
    'drain-timeout': { type: 'string', default: '10m' },
  },
  allowPositionals: true,
});
const N = Number(values.devices);
const C = Number(values.concurrency);
const OUTAGE = parseDuration(values.outage);
const M = Number(values['outage-devices']);
const DRAIN_TIMEOUT = parseDuration(values['drain-timeout']);
const serverFlags = positionals;

// ---- the manager ---------------------------------------------------------------------------

/** First receipt time per ip, and the number of calls. */
const receipts = new Map<string, number>();
let calls = 0;
let managerServer: Server | undefined;
const managerSockets = new Set<Socket>();

async function managerUp(port = 0): Promise<number> {
  const server = createServer((req, res) => {
    const at = Date.now();
    calls++;
    const ip = new URL(req.url ?? '/', 'http://x').searchParams.get('ip') ?? '';
    if (!receipts.has(ip)) receipts.set(ip, at);
    res.end('{"ok":true}');
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    managerSockets.add(s);
    s.on('close', () => managerSockets.delete(s));
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  managerServer = server;
  return (server.address() as AddressInfo).port;
}

async function managerDown(): Promise<void> {
  const server = managerServer;
  managerServer = undefined;
  if (!server) return;
  for (const s of managerSockets) s.destroy();
  await new Promise((r) => server.close(r));
}

// ---- the server ----------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const agent = new Agent({ connections: C, keepAliveTimeout: 10_000 });

async function call(url: string, method: 'GET' | 'PUT', body?: unknown) {
  const res = await request(url, {
    method,
    dispatcher: agent,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

const ipOf = (phase: number, i: number) => `10.${phase}.${(i >> 8) & 255}.${i & 255}`;

/** Registers `count` devices, `C` at a time; returns the elapsed milliseconds. */
async function registerAll(base: string, phase: number, count: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const r = await call(`${base}/ztp/register/bench-${phase}-${i}`, 'PUT', {
        ip: ipOf(phase, i),
      });
      if (r.status !== 201) throw new Error(`registration answered ${r.status}: ${r.text}`);
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
  return performance.now() - started;
}

/** createdAt (ms) of every trigger, by ip. */
async function triggerTimes(base: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let after: number | undefined;
  for (;;) {
    const q = after === undefined ? '' : `&after=${after}`;
    const r = await call(`${base}/ztp/mng/triggers?limit=1000${q}`, 'GET');
    const page = JSON.parse(r.text) as {
      triggers: { ip: string; createdAt: string }[];
      next?: number;
    };
    for (const t of page.triggers) out.set(t.ip, Date.parse(t.createdAt));
    if (page.next === undefined) return out;
    after = page.next;
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      console.log(`  !! gave up waiting for ${what} after ${timeoutMs} ms`);
      return false;
    }
    await sleep(10);
  }
  return true;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : 'n/a');

async function main(): Promise<void> {
  spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-triggers-'));
  const managerPort = await managerUp();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = [
    'bin/ztp.mjs',
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--database',
    join(dir, 'ztp.db'),
    '--manager-url',
    `http://127.0.0.1:${managerPort}`,
    '--log-level',
    'error',
    ...serverFlags,
  ];
  const server = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    const up = await waitForHttp(`${base}/healthz`, 10_000);
    if (!up) throw new Error('ztp serve did not start');
    console.log(`ztp serve ${serverFlags.join(' ') || '(default trigger settings)'}`);
    console.log(`phase 1: ${N} registrations, ${C} concurrent, manager up`);

    const t0 = Date.now();
    const regMs = await registerAll(base, 1, N);
    console.log(`  registration: ${fmt((N / regMs) * 1000)} /s (${fmt(regMs)} ms for ${N})`);
    await waitFor('phase 1 deliveries', () => receipts.size >= N, 60_000);
    const lastReceipt = Math.max(...[...receipts.values()]);
    const created = await triggerTimes(base);
    const lags: number[] = [];
    for (let i = 0; i < N; i++) {
      const ip = ipOf(1, i);
      const r = receipts.get(ip);
      const c = created.get(ip);
      if (r !== undefined && c !== undefined) lags.push(r - c);
    }
    lags.sort((a, b) => a - b);
    console.log(
      `  delivered ${receipts.size}/${N} in ${fmt(lastReceipt - t0)} ms from the first registration: ` +
        `${fmt((receipts.size / (lastReceipt - t0)) * 1000)} /s; manager calls ${calls}`,
    );
    console.log(
      `  lag registration->manager: p50 ${fmt(pct(lags, 50))} ms, p99 ${fmt(pct(lags, 99))} ms, max ${fmt(lags.at(-1) ?? NaN)} ms`,
    );

    console.log(`phase 2: manager down for ${OUTAGE} ms, ${M} registrations during the outage`);
    await managerDown();
    const outageStart = Date.now();
    const reg2Ms = await registerAll(base, 2, M);
    console.log(`  registration during the outage: ${fmt((M / reg2Ms) * 1000)} /s`);
    const callsBefore = calls;
    await sleep(Math.max(0, outageStart + OUTAGE - Date.now()));
    await managerUp(managerPort);
    const back = Date.now();
    const phase2 = Array.from({ length: M }, (_, i) => ipOf(2, i));
    const drained = await waitFor(
      'the backlog to drain',
      () => phase2.every((ip) => receipts.has(ip)),
      DRAIN_TIMEOUT,
    );
    const after = phase2.map((ip) => (receipts.get(ip) ?? NaN) - back).sort((a, b) => a - b);
    const got = after.filter(Number.isFinite).length;
    console.log(
      `  backlog ${drained ? 'drained' : 'NOT drained'}: ${got}/${M} delivered, last ${fmt(after.at(got - 1) ?? NaN)} ms after the manager came back ` +
        `(p50 ${fmt(pct(after.slice(0, got), 50))} ms, p99 ${fmt(pct(after.slice(0, got), 99))} ms); ` +
        `manager calls after recovery ${calls - callsBefore}`,
    );
  } finally {
    server.kill('SIGTERM');
    await Promise.race([once(server, 'exit'), sleep(10_000)]);
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await managerDown();
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForHttp(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await call(url, 'GET')).status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  return false;
}

await main();
