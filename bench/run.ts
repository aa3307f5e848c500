/**
 * `npm run bench`: measures every performance target of the project on this machine, in one
 * run, against bare node:http baselines started in the same run (bench/baseline.mjs): for
 * registrations the equal-work baseline (the same statements, batches and manager calls as a
 * registration of ztp, without the framework) is the one the target is set against.
 *
 *   tsx bench/run.ts [--devices 100000] [--scale-devices 1000000] [--seconds 6] [--warmup 2]
 *                    [--rounds 3] [--phases all|lookup,register,triggers,scale]
 *                    [--backlog 100000] [--out bench/results/<date>.json]
 *                    [--postgres postgres://user@127.0.0.1:5432/postgres]   (or BENCH_POSTGRES_URL)
 *
 * Everything listens on 127.0.0.1; every load run is wrk with one thread (the machine's cores
 * are shared by wrk and the server) and is bounded by --seconds. Each ratio target compares two
 * servers that run side by side and take turns under load (--rounds times), so that a drift of
 * the machine's speed during the run (a shared VM's steal time) hits both alike; the ratio is the
 * median of the per-round ratios, and each run's figures are those of its median round. The real
 * server is
 * `node bin/ztp.mjs serve` with its defaults (logging at info, one line per request, to a file)
 * and a local manager (bench/manager.mjs) that receives the triggers.
 */
import Database from 'better-sqlite3';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  cpuTimeUs,
  freePort,
  getJson,
  haveWrk,
  machineCpuUs,
  mainThreadCpuTimeUs,
  ROOT,
  rssOf,
  runWrk,
  sampleRss,
  seedDatabase,
  seedTriggerBacklog,
  sleep,
  startProc,
  timeDownload,
  type LoadResult,
  type LoadSpec,
  type Proc,
} from './lib.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    'scale-devices': { type: 'string', default: '1000000' },
    seconds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    phases: { type: 'string', default: 'all' },
    backlog: { type: 'string', default: '100000' },
    out: { type: 'string' },
    label: { type: 'string', default: '' },
    postgres: { type: 'string', default: process.env.BENCH_POSTGRES_URL ?? '' },
  },
});
const DEVICES = Number(args.devices);
const SCALE = Number(args['scale-devices']);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const ROUNDS = Math.max(1, Number(args.rounds));
const BACKLOG = Number(args.backlog);
const PHASES = new Set(
  args.phases === 'all' ? ['lookup', 'register', 'triggers', 'scale'] : args.phases.split(','),
);
const MB = 1024 * 1024;

if (!haveWrk()) {
  console.error('bench: wrk is not installed (apt-get install -y wrk)');
  process.exit(2);
}
try {
  statSync(join(ROOT, 'dist/cli.mjs'));
} catch {
  console.error('bench: dist/ is missing; run `npm run build` first (npm run bench does)');
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), 'ztp-bench-'));
const log = (msg: string) => {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
};
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

const results: Record<string, unknown> = {};
const loads: Record<string, LoadResult> = {};
let serverPeakRss = 0;
const procs: Proc[] = [];

async function start(args: string[], port: number, name: string, ready?: string) {
  const p = await startProc(args, port, join(tmp, `${name}.log`), ready);
  procs.push(p);
  return p;
}
async function stop(p: Proc) {
  await p.stop();
  procs.splice(procs.indexOf(p), 1);
}

async function startManager(name = 'manager'): Promise<Proc> {
  const port = await freePort();
  return start(['bench/manager.mjs', String(port)], port, name, '/stats');
}

async function startServer(db: string, managerUrl: string | undefined, name: string) {
  const port = await freePort();
  const flags = ['--host', '127.0.0.1', '--port', String(port), '--database', db];
  if (managerUrl) flags.push('--manager-url', managerUrl);
  return start(['bin/ztp.mjs', 'serve', ...flags], port, name);
}

async function startBaseline(db: string, mode: 'lookup' | 'each' | 'group'): Promise<Proc>;
async function startBaseline(db: string, mode: 'equal', managerUrl: string): Promise<Proc>;
async function startBaseline(db: string, mode: string, managerUrl?: string) {
  const port = await freePort();
  const argv = ['bench/baseline.mjs', db, String(port), mode];
  if (managerUrl) argv.push(managerUrl);
  // The baseline has no /healthz: any answer (404) means it listens.
  return start(argv, port, `baseline-${mode}`, '/');
}

/** The local manager's pid, once started: its CPU is counted per request of ztp's runs. */
let managerPid: number | undefined;
let seed = 1;
const warmed = new Set<string>();
async function load(
  name: string,
  url: string,
  kind: LoadSpec['kind'],
  connections: number,
  idSpace: number,
  seconds = SECONDS,
  pid?: number,
  isZtp = true,
  /** The manager whose CPU is counted per request: ztp's by default, none for a baseline. */
  manager = isZtp ? managerPid : undefined,
): Promise<LoadResult> {
  if (WARMUP > 0 && pid !== undefined && !warmed.has(`${pid} ${kind}`)) {
    // Every server (baseline included) gets one unrecorded warm-up run per kind of request, so
    // that the recorded runs measure a warm server (JIT-compiled, caches and workers started),
    // as in production, rather than its first second.
    warmed.add(`${pid} ${kind}`);
    await runWrk({ url, kind, connections, seconds: WARMUP, idSpace, seed: 1000 + seed }, tmp);
  }
  log(`${name}: wrk -c${connections} ${seconds}s`);
  const sampler = pid === undefined || !isZtp ? undefined : sampleRss(pid);
  const cpu0 = pid === undefined ? 0 : cpuTimeUs(pid);
  const main0 = pid === undefined ? 0 : mainThreadCpuTimeUs(pid);
  const manager0 = manager === undefined ? 0 : cpuTimeUs(manager);
  const machine0 = machineCpuUs();
  const r = await runWrk({ url, kind, connections, seconds, idSpace, seed: seed++ }, tmp);
  const machine1 = machineCpuUs();
  if (r.requests > 0) {
    const perRequest = (us: number) => Math.round(us / r.requests);
    if (pid !== undefined) {
      r.cpuUsPerRequest = perRequest(cpuTimeUs(pid) - cpu0);
      r.mainThreadCpuUsPerRequest = perRequest(mainThreadCpuTimeUs(pid) - main0);
    }
    if (manager !== undefined) r.managerCpuUsPerRequest = perRequest(cpuTimeUs(manager) - manager0);
    r.machineBusyUsPerRequest = perRequest(machine1.busy - machine0.busy);
    r.machineIdleUsPerRequest = perRequest(machine1.idle - machine0.idle);
  }
  if (sampler) {
    const peak = sampler.stop();
    serverPeakRss = Math.max(serverPeakRss, peak);
    r.rssPeakMB = round(peak / MB, 1);
  }
  loads[name] = r;
  log(`  ${r.rps} req/s, p50 ${r.p50ms} ms, p99 ${r.p99ms} ms, errors ${r.errors}`);
  return r;
}

interface Side {
  name: string;
  proc: Proc;
  kind: LoadSpec['kind'];
  idSpace: number;
  isZtp: boolean;
  /** A baseline's own manager, whose CPU is counted per request like ztp's. */
  managerPid?: number;
}

/** Median of the per-round req/s ratios a ÷ b, by pair name (filled by `interleaved`). */
const pairRatios: Record<string, number> = {};

/**
 * Runs `a` and each of `against` in turns, ROUNDS times each, at 50 connections; records each
 * under its name with the figures of its median round, and for each pair name the ratio
 * a ÷ against[pair] as the median of the rounds' ratios.
 */
async function interleaved(a: Side, against: Record<string, Side>): Promise<void> {
  const sides = [a, ...Object.values(against)];
  const runs: LoadResult[][] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const turn: LoadResult[] = [];
    for (const side of sides) {
      turn.push(
        await load(
          side.name,
          side.proc.url,
          side.kind,
          50,
          side.idSpace,
          SECONDS,
          side.proc.pid,
          side.isZtp,
          side.isZtp ? managerPid : side.managerPid,
        ),
      );
    }
    runs.push(turn);
  }
  const median = <T>(xs: T[], key: (x: T) => number): T =>
    [...xs].sort((x, y) => key(x) - key(y))[Math.floor(xs.length / 2)]!;
  for (const [i, side] of sides.entries()) {
    const all = runs.map((r) => r[i]!);
    loads[side.name] = { ...median(all, (r) => r.rps), roundsRps: all.map((r) => r.rps) };
  }
  for (const [j, pair] of Object.keys(against).entries()) {
    // A round whose baseline completed no request (a stalled disk) has no ratio.
    const ratios = runs.filter((r) => r[j + 1]!.rps > 0).map((r) => r[0]!.rps / r[j + 1]!.rps);
    if (ratios.length === 0) {
      log(`  ${pair}: no ratio (the baseline completed no request)`);
      continue;
    }
    // With an even count, the mean of the middle two: `median` picks the upper one.
    const sorted = ratios.sort((x, y) => x - y);
    const mid = Math.floor(sorted.length / 2);
    pairRatios[pair] = round(
      sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
    );
    log(`  ${pair}: ${pairRatios[pair]}× (median of ${ratios.length} rounds)`);
  }
}

async function main() {
  const started = Date.now();
  const machine = {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryMB: Math.round(totalmem() / MB),
    node: process.version,
    loadTool: 'wrk 4.1 (-t1), one thread, keep-alive',
    loadavgStart: loadavg().map((x) => round(x)),
  };
  log(`machine: ${JSON.stringify(machine)}`);

  // ---- databases -------------------------------------------------------------------------
  const mainDb = join(tmp, 'main.db');
  log(`seeding ${DEVICES} devices`);
  const t0 = performance.now();
  seedDatabase(mainDb, DEVICES);
  const dbBytes = statSync(mainDb).size;
  results.database = {
    devices: DEVICES,
    seedSeconds: round((performance.now() - t0) / 1000),
    bytes: dbBytes,
    bytesPerDevice: Math.round(dbBytes / DEVICES),
    note: 'devices + one history entry each, WAL checkpointed',
  };
  const baseDb = join(tmp, 'base.db');
  copyFileSync(mainDb, baseDb);
  const drainDb = join(tmp, 'drain.db');
  if (PHASES.has('triggers')) copyFileSync(mainDb, drainDb);

  const manager = await startManager();
  managerPid = manager.pid;
  const managerCalls = async () => (await getJson<{ calls: number }>(`${manager.url}/stats`)).calls;

  // ---- lookups and registrations ----------------------------------------------------------
  if (PHASES.has('lookup') || PHASES.has('register')) {
    // Each baseline has its own copy of the seeded database, as ztp has.
    const baseGroupDb = join(tmp, 'base-group.db');
    copyFileSync(mainDb, baseGroupDb);
    const baseEqualDb = join(tmp, 'base-equal.db');
    if (PHASES.has('register')) copyFileSync(mainDb, baseEqualDb);
    const server = await startServer(mainDb, manager.url, 'server');
    await sleep(2000);
    results.idleRssMB = round(rssOf(server.pid) / MB, 1);
    log(`idle RSS ${String(results.idleRssMB)} MB`);
    if (PHASES.has('lookup')) {
      const b = await startBaseline(baseDb, 'lookup');
      await interleaved(
        { name: 'ztp check c50', proc: server, kind: 'check', idSpace: DEVICES, isZtp: true },
        {
          check: {
            name: 'baseline lookup c50',
            proc: b,
            kind: 'check',
            idSpace: DEVICES,
            isZtp: false,
          },
        },
      );
      await stop(b);
      await load(
        'ztp check c1',
        server.url,
        'check',
        1,
        DEVICES,
        Math.ceil(SECONDS / 2),
        server.pid,
      );
    }
    if (PHASES.has('register')) {
      const each = await startBaseline(baseDb, 'each');
      await load(
        'baseline upsert one-commit-per-request c50',
        each.url,
        'register',
        50,
        2 * DEVICES,
        SECONDS,
        each.pid,
        false,
      );
      await stop(each);
      const b = await startBaseline(baseGroupDb, 'group');
      // The equal-work baseline calls a manager of its own, so that each side's calls (and the
      // manager's CPU per request) are counted apart.
      const equalManager = await startManager('manager-equal');
      const equal = await startBaseline(baseEqualDb, 'equal', equalManager.url);
      const before = await managerCalls();
      const t = performance.now();
      await interleaved(
        {
          name: 'ztp register c50',
          proc: server,
          kind: 'register',
          idSpace: 2 * DEVICES,
          isZtp: true,
        },
        {
          register: {
            name: 'baseline upsert group-commit c50',
            proc: b,
            kind: 'register',
            idSpace: 2 * DEVICES,
            isZtp: false,
          },
          registerEqual: {
            name: 'equal-work baseline c50',
            proc: equal,
            kind: 'register',
            idSpace: 2 * DEVICES,
            isZtp: false,
            managerPid: equalManager.pid,
          },
        },
      );
      await stop(b);
      await stop(equal);
      results.equalWorkBaseline = {
        ...equalWorkDone(baseEqualDb),
        managerCalls: (await getJson<{ calls: number }>(`${equalManager.url}/stats`)).calls,
      };
      log(`  equal-work baseline: ${JSON.stringify(results.equalWorkBaseline)}`);
      await stop(equalManager);
      // Every trigger of the ztp rounds, delivered while the rounds ran (baseline turns included).
      const delivered = (await managerCalls()) - before;
      const rounds = loads['ztp register c50']!.roundsRps ?? [];
      results.triggersDuringRegister = {
        registrations: Math.round(rounds.reduce((x, y) => x + y, 0) * SECONDS),
        delivered,
        seconds: round((performance.now() - t) / 1000),
      };
      await load(
        'ztp register c1',
        server.url,
        'register',
        1,
        2 * DEVICES,
        Math.ceil(SECONDS / 2),
        server.pid,
      );
    }
    results.loadRssMB = round(serverPeakRss / MB, 1);
    await stop(server);
    if (PHASES.has('register')) {
      // The same registrations with no manager configured: what the trigger outbox and its
      // deliveries cost on top (diagnostic; the targets are measured with the manager above).
      const bare = await startServer(mainDb, undefined, 'server-no-manager');
      await load(
        'ztp register c50, no manager (diagnostic)',
        bare.url,
        'register',
        50,
        2 * DEVICES,
        SECONDS,
        bare.pid,
      );
      await stop(bare);
    }
  }

  // ---- trigger backlog -------------------------------------------------------------------
  if (PHASES.has('triggers')) {
    log(`seeding a backlog of ${BACKLOG} due triggers`);
    seedTriggerBacklog(drainDb, BACKLOG);
    const before = await managerCalls();
    const server = await startServer(drainDb, manager.url, 'server-drain');
    // No warm-up here: the registrations must run while the backlog drains, from its start.
    warmed.add(`${server.pid} register`);
    const t = performance.now();
    const oldestPending = async () =>
      (
        await getJson<{ triggers: { id: number }[] }>(
          `${server.url}/ztp/mng/triggers?state=pending&limit=1`,
        )
      ).triggers[0]?.id;
    // Registrations keep coming while the backlog drains: they must not starve.
    const during = load(
      'ztp register c50 during drain',
      server.url,
      'register',
      50,
      2 * DEVICES,
      SECONDS,
      server.pid,
    );
    let drained: number | undefined;
    const deadline = t + 90_000;
    while (performance.now() < deadline) {
      const id = await oldestPending();
      if (id === undefined || id > BACKLOG) {
        drained = (performance.now() - t) / 1000;
        break;
      }
      if (performance.now() - t > 10_000 && (await managerCalls()) === before) break;
      await sleep(100);
    }
    await during;
    const calls = (await managerCalls()) - before;
    results.backlog = {
      triggers: BACKLOG,
      drainSeconds: drained === undefined ? null : round(drained),
      deliveriesPerSecond: drained === undefined ? null : Math.round(BACKLOG / drained),
      managerCalls: calls,
      note:
        drained === undefined
          ? calls === 0
            ? 'no trigger was delivered: the dispatcher is not running in this build'
            : 'not drained within 90 s'
          : 'backlog of due pending triggers (as an outage leaves them), drained with registrations at c50 running',
    };
    await stop(server);
  }

  // ---- scale -----------------------------------------------------------------------------
  if (PHASES.has('scale')) {
    const smallDb = join(tmp, 'small.db');
    seedDatabase(smallDb, 1000);
    const small = await startServer(smallDb, manager.url, 'server-1k');
    let scaleDb = mainDb;
    if (SCALE !== DEVICES) {
      scaleDb = join(tmp, 'scale.db');
      log(`seeding ${SCALE} devices`);
      seedDatabase(scaleDb, SCALE);
    }
    const scaleBytes = statSync(scaleDb).size;
    const s = await startServer(scaleDb, manager.url, 'server-scale');
    await sleep(1000);
    log(`streaming GET /ztp/mng/list of ${SCALE} ids`);
    const rssBefore = rssOf(s.pid);
    const sampler = sampleRss(s.pid, 20);
    const dl = await timeDownload(`${s.url}/ztp/mng/list`);
    const peak = sampler.stop();
    results.list = {
      ids: SCALE,
      seconds: round(dl.seconds),
      bytes: dl.bytes,
      rssBeforeMB: round(rssBefore / MB, 1),
      rssPeakMB: round(peak / MB, 1),
    };
    log(`  ${round(dl.seconds)} s, ${dl.bytes} bytes, peak RSS ${round(peak / MB, 1)} MB`);
    await interleaved(
      {
        name: `ztp check c50 @${SCALE} devices`,
        proc: s,
        kind: 'check',
        idSpace: SCALE,
        isZtp: true,
      },
      {
        scale: {
          name: 'ztp check c50 @1k devices',
          proc: small,
          kind: 'check',
          idSpace: 1000,
          isZtp: true,
        },
      },
    );
    results.scale = {
      devices: SCALE,
      lookupRatioBigToSmall: pairRatios.scale,
      databaseBytes: scaleBytes,
      bytesPerDevice: Math.round(scaleBytes / SCALE),
    };
    await stop(s);
    await stop(small);
  }

  // ---- PostgreSQL ------------------------------------------------------------------------
  if (args.postgres) {
    const pg = (await import('pg')).default;
    const admin = new pg.Client({ connectionString: args.postgres });
    await admin.connect();
    const name = `ztp_bench_${process.pid}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(args.postgres);
    url.pathname = `/${name}`;
    try {
      const server = await startServer(url.href, manager.url, 'server-postgres');
      log(`seeding ${DEVICES} devices into PostgreSQL`);
      const c = new pg.Client({ connectionString: url.href });
      await c.connect();
      const mac = (x: string) =>
        `'02:00:' || lpad(to_hex((${x} >> 24) & 255), 2, '0') || ':' || lpad(to_hex((${x} >> 16) & 255), 2, '0') || ':' || lpad(to_hex((${x} >> 8) & 255), 2, '0') || ':' || lpad(to_hex(${x} & 255), 2, '0')`;
      const at = Date.now();
      await c.query(
        `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
         SELECT ${mac('i')}, '10.0.0.1', 'device-' || i, 'rack 4, row 2', ${at}, ${at}, ${at}, 1, '10.0.0.1'
         FROM generate_series(0, ${DEVICES - 1}) AS i`,
      );
      await c.query(
        `INSERT INTO history (device_id, seq, at, ip, source) SELECT id, 1, ${at}, ip, ip FROM devices`,
      );
      await c.query('VACUUM ANALYZE');
      await c.end();
      await load('postgres: ztp check c50', server.url, 'check', 50, DEVICES, SECONDS, server.pid);
      await load(
        'postgres: ztp register c50',
        server.url,
        'register',
        50,
        2 * DEVICES,
        SECONDS,
        server.pid,
      );
      await load(
        'postgres: ztp register c1',
        server.url,
        'register',
        1,
        2 * DEVICES,
        Math.ceil(SECONDS / 2),
        server.pid,
      );
      await stop(server);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  }

  await stop(manager);
  const finished = { loadavgEnd: loadavg().map((x) => round(x)) };
  return { machine: { ...machine, ...finished }, seconds: round((Date.now() - started) / 1000) };
}

/**
 * What the equal-work baseline did, read from its database once it stopped (warm-up included):
 * the registrations it committed and the state of the triggers they made, so that the table
 * shows that its figures include every manager call and delivered mark.
 */
function equalWorkDone(path: string): Record<string, number> {
  const db = new Database(path, { readonly: true });
  try {
    const registrations = db
      .prepare<[], { n: number }>('SELECT sum(registrations) AS n FROM devices')
      .get()!.n;
    const count = (state: string) =>
      db
        .prepare<[string], { n: number }>('SELECT count(*) AS n FROM triggers WHERE state = ?')
        .get(state)!.n;
    return {
      // The seeded database holds one registration per device.
      registrations: registrations - DEVICES,
      triggersDelivered: count('delivered'),
      triggersPending: count('pending'),
    };
  } finally {
    db.close();
  }
}

/**
 * Where the machine's CPU went per registration (median rounds of the register pair), and the
 * most req/s this mix of work could reach if it also used the time the machine sat idle: the
 * ceiling that no change to ztp's event loop alone can lift, since the manager, wrk and the
 * kernel need their share of the same cores.
 */
function registerCpuBudget(): Record<string, number> | undefined {
  const ztp = loads['ztp register c50'];
  const base = loads['baseline upsert group-commit c50'];
  if (ztp?.machineBusyUsPerRequest === undefined || ztp.cpuUsPerRequest === undefined) return;
  if (base?.machineBusyUsPerRequest === undefined || base.cpuUsPerRequest === undefined) return;
  const usable = (l: LoadResult) => l.machineBusyUsPerRequest! + l.machineIdleUsPerRequest!;
  const ceiling = (l: LoadResult) => Math.round((l.rps * usable(l)) / l.machineBusyUsPerRequest!);
  const ztpOther = ztp.cpuUsPerRequest - (ztp.mainThreadCpuUsPerRequest ?? 0);
  const manager = ztp.managerCpuUsPerRequest ?? 0;
  return {
    ztpMainThreadUs: ztp.mainThreadCpuUsPerRequest ?? 0,
    ztpOtherThreadsUs: ztpOther,
    managerUs: manager,
    restUs: ztp.machineBusyUsPerRequest - ztp.cpuUsPerRequest - manager,
    idleUs: ztp.machineIdleUsPerRequest!,
    baselineServerUs: base.cpuUsPerRequest,
    baselineRestUs: base.machineBusyUsPerRequest - base.cpuUsPerRequest,
    baselineIdleUs: base.machineIdleUsPerRequest!,
    ztpCeilingRps: ceiling(ztp),
    baselineRps: base.rps,
    ceilingRatio: round(ceiling(ztp) / base.rps),
    ...equalWorkCpu(ceiling(ztp)),
  };
}

/** The equal-work baseline's share of the same budget, split as ztp's is. */
function equalWorkCpu(ztpCeilingRps: number): Record<string, number> {
  const equal = loads['equal-work baseline c50'];
  if (equal?.machineBusyUsPerRequest === undefined || equal.cpuUsPerRequest === undefined)
    return {};
  const main = equal.mainThreadCpuUsPerRequest ?? 0;
  const manager = equal.managerCpuUsPerRequest ?? 0;
  return {
    equalMainThreadUs: main,
    equalOtherThreadsUs: equal.cpuUsPerRequest - main,
    equalManagerUs: manager,
    equalRestUs: equal.machineBusyUsPerRequest - equal.cpuUsPerRequest - manager,
    equalIdleUs: equal.machineIdleUsPerRequest!,
    equalRps: equal.rps,
    equalCeilingRatio: round(ztpCeilingRps / equal.rps),
  };
}

interface Target {
  target: string;
  value: string;
  goal: string;
  pass: boolean | null;
}

function targets(): Target[] {
  const t: Target[] = [];
  const ratio = (a?: LoadResult, b?: LoadResult) => (a && b ? round(a.rps / b.rps) : undefined);
  const add = (
    target: string,
    value: number | undefined,
    goal: string,
    pass: (v: number) => boolean,
    unit = '',
  ) => {
    t.push({
      target,
      value: value === undefined ? 'not measured' : `${value}${unit}`,
      goal,
      pass: value === undefined ? null : pass(value),
    });
  };
  const check = loads['ztp check c50'];
  const reg = loads['ztp register c50'];
  add('check c50 / baseline lookup', pairRatios.check, '≥ 0.8×', (v) => v >= 0.8, '×');
  add('check c50 p99', check?.p99ms, '≤ 5 ms', (v) => v <= 5, ' ms');
  // What the bare baseline itself reaches on this machine in the same run: a p99 goal that it
  // misses says more about the machine than about ztp.
  add(
    'baseline lookup c50 p99 (reference)',
    loads['baseline lookup c50']?.p99ms,
    'reported',
    () => true,
    ' ms',
  );
  add(
    'register c50 / baseline group commit',
    pairRatios.register,
    '≥ 0.6× (aim 0.8×)',
    (v) => v >= 0.6,
    '×',
  );
  add(
    'register c50 / equal-work baseline',
    pairRatios.registerEqual,
    '≥ 0.8×',
    (v) => v >= 0.8,
    '×',
  );
  add(
    'register c50: ceiling with idle CPU used ÷ baseline',
    (results.registerCpu as { ceilingRatio: number } | undefined)?.ceilingRatio,
    'reported',
    () => true,
    '×',
  );
  add('register c50 p99', reg?.p99ms, '≤ 15 ms', (v) => v <= 15, ' ms');
  add(
    'baseline group commit c50 p99 (reference)',
    loads['baseline upsert group-commit c50']?.p99ms,
    'reported',
    () => true,
    ' ms',
  );
  add(
    'equal-work baseline c50 p99 (reference)',
    loads['equal-work baseline c50']?.p99ms,
    'reported',
    () => true,
    ' ms',
  );
  add('register c1 p50', loads['ztp register c1']?.p50ms, '≤ 1 ms', (v) => v <= 1, ' ms');
  const scale = results.scale as
    { lookupRatioBigToSmall: number; bytesPerDevice: number } | undefined;
  add(`lookup @${SCALE} / @1k`, scale?.lookupRatioBigToSmall, '≥ 0.8×', (v) => v >= 0.8, '×');
  const list = results.list as { seconds: number; rssPeakMB: number } | undefined;
  add(`list of ${SCALE} ids streamed`, list?.seconds, '≤ 3 s (1M)', (v) => v <= 3, ' s');
  add('RSS while streaming the list', list?.rssPeakMB, '< 250 MB', (v) => v < 250, ' MB');
  const dbr = results.database as { bytesPerDevice: number };
  add(`database bytes per device @${DEVICES}`, dbr.bytesPerDevice, 'reported', () => true, ' B');
  add(`database bytes per device @${SCALE}`, scale?.bytesPerDevice, 'reported', () => true, ' B');
  add('idle RSS', results.idleRssMB as number | undefined, '≤ 100 MB', (v) => v <= 100, ' MB');
  add(
    'RSS under load',
    results.loadRssMB as number | undefined,
    '≤ 250 MB',
    (v) => v <= 250,
    ' MB',
  );
  const backlog = results.backlog as
    { drainSeconds: number | null; deliveriesPerSecond: number | null } | undefined;
  add(
    'trigger deliveries/s (backlog drain)',
    backlog?.deliveriesPerSecond ?? undefined,
    '≥ 5000/s',
    (v) => v >= 5000,
    '/s',
  );
  add(
    `${BACKLOG} backlog drain time`,
    backlog?.drainSeconds ?? undefined,
    '≤ 60 s',
    (v) => v <= 60,
    ' s',
  );
  const cost = (base?: LoadResult, ztp?: LoadResult) =>
    base?.cpuUsPerRequest && ztp?.cpuUsPerRequest
      ? round(base.cpuUsPerRequest / ztp.cpuUsPerRequest)
      : undefined;
  add(
    'check: baseline CPU/req ÷ ztp CPU/req',
    cost(loads['baseline lookup c50'], check),
    'reported',
    () => true,
    '×',
  );
  add(
    'register: baseline group CPU/req ÷ ztp CPU/req',
    cost(loads['baseline upsert group-commit c50'], reg),
    'reported',
    () => true,
    '×',
  );
  add(
    'register: equal-work baseline CPU/req ÷ ztp CPU/req',
    cost(loads['equal-work baseline c50'], reg),
    'reported',
    () => true,
    '×',
  );
  const pgCheck = loads['postgres: ztp check c50'];
  const pgReg = loads['postgres: ztp register c50'];
  if (pgCheck && pgReg) {
    add(
      'postgres: check c50 / baseline lookup',
      ratio(pgCheck, loads['baseline lookup c50']),
      'reported',
      () => true,
      '×',
    );
    add(
      'postgres: register c50 / baseline group commit',
      ratio(pgReg, loads['baseline upsert group-commit c50']),
      'reported',
      () => true,
      '×',
    );
    add('postgres: register c50 p99', pgReg.p99ms, 'reported', () => true, ' ms');
    add(
      'postgres: register c1 p50',
      loads['postgres: ztp register c1']?.p50ms,
      'reported',
      () => true,
      ' ms',
    );
  }
  const during = loads['ztp register c50 during drain'];
  add(
    'register c50 during drain / without',
    ratio(during, reg),
    'not starved',
    (v) => v > 0.3,
    '×',
  );
  return t;
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [n, r] of rows.entries()) {
    console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

let exitCode = 0;
try {
  const meta = await main();
  const budget = registerCpuBudget();
  if (budget) results.registerCpu = budget;
  const t = targets();
  console.log('');
  printTable([
    [
      'run',
      'req/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'errors',
      'server RSS MB',
      'server CPU µs/req',
    ],
    ...Object.entries(loads).map(([name, r]) => [
      name,
      String(r.rps),
      String(r.p50ms),
      String(r.p90ms),
      String(r.p99ms),
      String(r.maxms),
      String(r.errors),
      r.rssPeakMB === undefined ? '' : String(r.rssPeakMB),
      r.cpuUsPerRequest === undefined ? '' : String(r.cpuUsPerRequest),
    ]),
  ]);
  if (budget) {
    console.log('');
    console.log('CPU per registration at 50 connections (µs, whole machine, median rounds):');
    printTable([
      ['', 'server main thread', 'server other threads', 'manager', 'wrk and kernel', 'idle'],
      [
        'ztp register c50',
        ...[
          budget.ztpMainThreadUs,
          budget.ztpOtherThreadsUs,
          budget.managerUs,
          budget.restUs,
          budget.idleUs,
        ].map(String),
      ],
      [
        'baseline group commit',
        String(budget.baselineServerUs),
        '',
        '',
        String(budget.baselineRestUs),
        String(budget.baselineIdleUs),
      ],
      ...(budget.equalMainThreadUs === undefined
        ? []
        : [
            [
              'equal-work baseline',
              ...[
                budget.equalMainThreadUs,
                budget.equalOtherThreadsUs,
                budget.equalManagerUs,
                budget.equalRestUs,
                budget.equalIdleUs,
              ].map(String),
            ],
          ]),
    ]);
    console.log(
      `ztp with the idle time used too: at most ${budget.ztpCeilingRps} req/s, ` +
        `${budget.ceilingRatio}× the baseline's ${budget.baselineRps} req/s` +
        (budget.equalRps === undefined
          ? ''
          : `, ${budget.equalCeilingRatio}× the equal-work baseline's ${budget.equalRps} req/s`),
    );
  }
  console.log('');
  printTable([
    ['target', 'value', 'goal', 'met'],
    ...t.map((x) => [x.target, x.value, x.goal, x.pass === null ? '—' : x.pass ? 'yes' : 'NO']),
  ]);
  const date = new Date().toISOString().slice(0, 16).replace(':', '');
  const out =
    args.out ?? join(ROOT, 'bench/results', `${date}${args.label ? `-${args.label}` : ''}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), ...meta, devices: DEVICES, secondsPerRun: SECONDS, loads, results, targets: t }, null, 2)}\n`,
  );
  console.log(`\nresults written to ${out}`);
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  for (const p of [...procs]) await p.stop();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(exitCode);
