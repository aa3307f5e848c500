/**
 * Where a registration's SQLite time goes: the real SqliteDatabase (as the server opens it:
 * fsync off the loop, checkpoints in a worker) and the real device store and outbox over a seeded
 * database, batches of registrations as group commit makes them at 50 connections (each one the
 * device step and the outbox step in one transaction, as DeviceService commits them), each new
 * trigger handed over and completed as a delivered call would be. Every prepared statement is
 * timed (feature statements by the start of their SQL); prints microseconds per registration for
 * each, the commits included. No HTTP, no manager: the SQL alone.
 *
 *   npm run bench:sql [-- --devices 100000] [--batches 400] [--batch 50] [--no-triggers]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type Database from 'better-sqlite3';
import { SqliteDatabase } from '../src/db/sqlite/database.js';
import { SqliteDeviceStore } from '../src/devices/store-sqlite.js';
import { SqliteOutbox } from '../src/triggers/outbox-sqlite.js';
import { isClaimed, type ClaimedTrigger, type Trigger } from '../src/triggers/outbox.js';
import { macOf, seedDatabase } from './lib.js';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    batches: { type: 'string', default: '400' },
    batch: { type: 'string', default: '50' },
    'no-triggers': { type: 'boolean', default: false },
  },
});
const DEVICES = Number(args.devices);
const BATCHES = Number(args.batches);
const BATCH = Number(args.batch);
const TRIGGERS = !args['no-triggers'];
const WARMUP = 100;

const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-sql-'));
const path = join(dir, 'ztp.db');
seedDatabase(path, DEVICES);
const db = new SqliteDatabase(path, { backgroundCheckpoint: true, fsyncOffLoop: true });
const devices = new SqliteDeviceStore(db);
const outbox = new SqliteOutbox(db);

interface Timed {
  run?: (...a: unknown[]) => unknown;
  get?: (...a: unknown[]) => unknown;
  all?: (...a: unknown[]) => unknown;
}
const nanos = new Map<string, number>();
function timed(name: string, stmt: Timed): void {
  for (const method of ['run', 'get', 'all'] as const) {
    const original = stmt[method]?.bind(stmt);
    if (!original) continue;
    stmt[method] = (...a: unknown[]) => {
      const start = process.hrtime.bigint();
      try {
        return original(...a);
      } finally {
        nanos.set(name, (nanos.get(name) ?? 0) + Number(process.hrtime.bigint() - start));
      }
    };
  }
}
// The group commit's own statements are private; a benchmark may look inside.
const control = (db as unknown as { control: Record<string, Timed> }).control;
for (const [name, stmt] of Object.entries(control)) timed(name, stmt);
// Feature statements come from the database's cache: each is wrapped once, when first prepared.
const wrapped = new Set<Database.Statement>();
const statement = db.statement.bind(db);
db.statement = <R>(sql: string) => {
  const stmt = statement<R>(sql);
  if (!wrapped.has(stmt)) {
    wrapped.add(stmt);
    timed(sql.replace(/\s+/g, ' ').slice(0, 27), stmt);
  }
  return stmt;
};

/** One registration as DeviceService commits it; resolves with its trigger, if any. */
async function register(id: string, at: number): Promise<Trigger | ClaimedTrigger | undefined> {
  const reg = {
    id,
    ip: '10.1.2.3',
    name: 'bench-device',
    userdata: 'rack 4, row 2',
    at,
    source: '127.0.0.1',
  };
  const device = devices.registerStep(reg, 20);
  if (!TRIGGERS) {
    await db.commit(id, [device]);
    return undefined;
  }
  const [, trigger] = await db.commit(id, [
    device,
    outbox.enqueueStep(id, reg.ip, at, { handOverLeaseMs: 60_000 }),
  ]);
  return trigger;
}

let seed = 7;
const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
let registrations = 0;
const cpuStart = { value: process.cpuUsage() };
for (let b = 0; b < WARMUP + BATCHES; b++) {
  if (b === WARMUP) {
    nanos.clear();
    registrations = 0;
    cpuStart.value = process.cpuUsage();
  }
  const at = Date.now();
  const results = await Promise.all(
    Array.from(
      { length: BATCH },
      () => register(macOf(Math.floor(random() * DEVICES * 2)), at), // half known devices, half new
    ),
  );
  const handedOver = results.flatMap((t) => (t && isClaimed(t) ? [t] : []));
  await Promise.all(
    handedOver.map((t) =>
      outbox.complete(t, { kind: 'delivered', at: Date.now() }, { lazy: true }),
    ),
  );
  registrations += BATCH;
}
const cpu = process.cpuUsage(cpuStart.value);
await db.close();
rmSync(dir, { recursive: true, force: true });

const perReg = (ns: number) => (ns / 1000 / registrations).toFixed(1).padStart(7);
let sum = 0;
console.log(
  `${registrations} registrations in batches of ${BATCH} over ${DEVICES} devices, triggers ${TRIGGERS ? 'on (handed over)' : 'off'}`,
);
console.log('statement                    µs per registration');
for (const [name, ns] of [...nanos].sort((a, b) => b[1] - a[1])) {
  sum += ns;
  console.log(`${name.padEnd(28)}${perReg(ns)}`);
}
console.log(`${'all statements'.padEnd(28)}${perReg(sum)}`);
console.log(`${'process CPU'.padEnd(28)}${perReg((cpu.user + cpu.system) * 1000)}`);
