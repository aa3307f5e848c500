/**
 * Benchmark plumbing: child processes on 127.0.0.1, wrk runs with a Lua script that reports
 * JSON, RSS sampling from /proc, and database seeding with the real schema.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SqliteDatabase } from '../src/db/sqlite/database.js';

export const ROOT = new URL('..', import.meta.url).pathname;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The device id of seed number `i`: a locally administered MAC address, canonical form. */
export function macOf(i: number): string {
  const b = [(i >>> 24) & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255];
  return `02:00:${b.map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  url: string;
  stop(): Promise<void>;
}

/** Starts a process whose output goes to `logFile` and waits until `readyPath` answers 200. */
export async function startProc(
  args: string[],
  port: number,
  logFile: string,
  readyPath = '/healthz',
): Promise<Proc> {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const state = { exited: false };
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      state.exited = true;
      resolve();
    }),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (state.exited) throw new Error(`${args.join(' ')} exited early; see ${logFile}`);
    try {
      const res = await fetch(url + readyPath);
      await res.arrayBuffer();
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${args.join(' ')} did not become ready; see ${logFile}`);
    }
    await sleep(50);
  }
  return {
    child,
    pid: child.pid!,
    url,
    stop: async () => {
      if (state.exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** Resident set size of a process in bytes (VmRSS), 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system, all threads) of a process so far, in microseconds. */
export function cpuTimeUs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after "comm) state").
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU time of a process's main thread (the event loop, for node) so far, in microseconds. */
export function mainThreadCpuTimeUs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The whole machine's CPU time so far (all cores), in microseconds, from /proc/stat. */
export interface MachineCpu {
  /** Time some process or the kernel ran: user, nice, system, irq, softirq. */
  busy: number;
  /** Time no one ran (idle and iowait): what more work could still have used. */
  idle: number;
  /** Time the hypervisor gave to other guests: neither ours nor usable. */
  steal: number;
}

export function machineCpuUs(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .split(/\s+/)
    .slice(1)
    .map((x) => (Number(x) * 1e6) / CLOCK_TICKS);
  return {
    busy: user! + nice! + system! + irq! + softirq!,
    idle: idle! + iowait!,
    steal: steal ?? 0,
  };
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function sampleRss(pid: number, everyMs = 50): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxms: number;
  /** Non-2xx/3xx answers plus socket errors and timeouts. */
  errors: number;
  /** Peak RSS of the server during the run (ztp runs only). */
  rssPeakMB?: number;
  /**
   * CPU time (user + system, all threads) the server process spent per request during the run:
   * unlike req/s it hardly depends on how much of the machine other processes take.
   */
  cpuUsPerRequest?: number;
  /** The same for the server's main thread only (its event loop). */
  mainThreadCpuUsPerRequest?: number;
  /** CPU the local manager process spent per request of this run (ztp runs with a manager). */
  managerCpuUsPerRequest?: number;
  /**
   * The whole machine's CPU per request during the run (every process and the kernel, wrk
   * included), and the idle time per request that more work could still have used.
   */
  machineBusyUsPerRequest?: number;
  machineIdleUsPerRequest?: number;
  /**
   * Interleaved pairs (bench/run.ts --rounds): the req/s of every round of this run; the fields
   * above are those of its median round.
   */
  roundsRps?: number[];
}

export interface LoadSpec {
  url: string;
  kind: 'check' | 'register';
  connections: number;
  seconds: number;
  /** Ids are drawn uniformly from macOf(0 .. idSpace-1). */
  idSpace: number;
  seed: number;
}

/** Whether wrk is installed (the bench needs it: `apt-get install -y wrk`). */
export function haveWrk(): boolean {
  return spawnSync('wrk', ['--version']).error === undefined;
}

function luaScript(spec: LoadSpec): string {
  const request =
    spec.kind === 'check'
      ? `return wrk.format("GET", "/ztp/check/" .. mac(math.random(0, N - 1)))`
      : `return wrk.format("PUT", "/ztp/register/" .. mac(math.random(0, N - 1)), headers, body)`;
  return `
local N = ${spec.idSpace}
local headers = { ["Content-Type"] = "application/json" }
local body = '{"ip":"10.1.2.3","name":"bench-device","userdata":"rack 4, row 2"}'
math.randomseed(${spec.seed})
local function mac(i)
  return string.format("02:00:%02x:%02x:%02x:%02x", math.floor(i / 16777216) % 256,
    math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
end
request = function()
  ${request}
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nBENCHJSON {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;
}

/** One wrk run (one thread: the machine has 2 cores shared by wrk and the server). */
export async function runWrk(spec: LoadSpec, tmpDir: string): Promise<LoadResult> {
  const script = join(tmpDir, `wrk-${spec.kind}-${spec.seed}.lua`);
  writeFileSync(script, luaScript(spec));
  const child = spawn(
    'wrk',
    [
      '-t1',
      `-c${spec.connections}`,
      `-d${spec.seconds}s`,
      '--timeout',
      '10s',
      '-s',
      script,
      spec.url,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), (spec.seconds + 30) * 1000);
  await new Promise<void>((resolve) => child.once('close', () => resolve()));
  clearTimeout(timer);
  const line = /BENCHJSON (\{.*\})/.exec(stdout);
  if (!line) throw new Error(`wrk failed: ${stderr || stdout}`);
  const j = JSON.parse(line[1]!) as Record<string, number>;
  const seconds = j.duration_us! / 1e6;
  const ms = (us: number | undefined) => Math.round((us ?? 0) / 10) / 100;
  return {
    requests: j.requests!,
    seconds: Math.round(seconds * 100) / 100,
    rps: Math.round(j.requests! / seconds),
    p50ms: ms(j.p50_us),
    p90ms: ms(j.p90_us),
    p99ms: ms(j.p99_us),
    maxms: ms(j.max_us),
    errors: j.errors!,
  };
}

/**
 * Creates a database with the real schema holding devices macOf(0 .. n-1), each with one
 * history entry, as a registration would have left them.
 */
export function seedDatabase(path: string, n: number): void {
  const database = new SqliteDatabase(path);
  const db = database.connection;
  db.pragma('synchronous = OFF');
  const dev = db.prepare(
    `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
     VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const hist = db.prepare(
    'INSERT INTO history (device_id, seq, at, ip, source) VALUES (?, 1, ?, ?, ?)',
  );
  const at = Date.now();
  const chunk = 50_000;
  for (let start = 0; start < n; start += chunk) {
    db.transaction(() => {
      for (let i = start; i < Math.min(n, start + chunk); i++) {
        const id = macOf(i);
        const ip = `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
        dev.run(id, ip, `device-${i}`, 'rack 4, row 2', at, at, at, ip);
        hist.run(id, at, ip, ip);
      }
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  void database.close();
}

/** Adds `n` due pending triggers (the backlog an outage leaves behind once they are due). */
export function seedTriggerBacklog(path: string, n: number): void {
  const database = new SqliteDatabase(path);
  const db = database.connection;
  db.pragma('synchronous = OFF');
  const ins = db.prepare(
    `INSERT INTO triggers (device_id, ip, key, state, attempts, created_at, next_attempt_at, updated_at)
     VALUES (?, ?, ?, 'pending', 1, ?, ?, ?)`,
  );
  const at = Date.now();
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      ins.run(
        macOf(i),
        `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`,
        `k${i}`,
        at,
        at,
        at,
      );
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  void database.close();
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return (await res.json()) as T;
}

/** Fetches `url` and consumes the body as a stream; returns bytes and seconds. */
export async function timeDownload(url: string): Promise<{ bytes: number; seconds: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`${url}: ${res.status}`);
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Uint8Array).byteLength;
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}
