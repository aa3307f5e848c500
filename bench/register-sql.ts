/**
 * Where a registration's SQLite time goes: the real SqliteStore (as the server opens it: fsync
 * off the loop, checkpoints in a worker) over a seeded database, batches of registrations as
 * group commit makes them at 50 connections, each new trigger handed over and completed as a
 * delivered call would be. Every prepared statement the store runs is timed; prints microseconds
 * per registration for each, the commits included. No HTTP, no manager: the SQL alone.
 *
 *   npm run bench:sql [-- --devices 100000] [--batches 400] [--batch 50] [--no-triggers]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../test/storage/store-view.js';
import { isClaimed } from '../src/triggers/outbox.js';
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
const store = new SqliteStore(path, { backgroundCheckpoint: true, fsyncOffLoop: true });

interface Timed {
  run?: (...a: unknown[]) => unknown;
  get?: (...a: unknown[]) => unknown;
  all?: (...a: unknown[]) => unknown;
}
// The store's prepared statements are private; a benchmark may look inside.
const statements = (store as unknown as { stmts: Record<string, Timed> }).stmts;
const nanos = new Map<string, number>();
for (const [name, stmt] of Object.entries(statements)) {
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
    Array.from({ length: BATCH }, () =>
      store.register(
        {
          id: macOf(Math.floor(random() * DEVICES * 2)), // half known devices, half new
          ip: '10.1.2.3',
          name: 'bench-device',
          userdata: 'rack 4, row 2',
          at,
          source: '127.0.0.1',
        },
        { enqueueTrigger: TRIGGERS, historyLimit: 20, handOverLeaseMs: 60_000 },
      ),
    ),
  );
  const handedOver = results.flatMap((r) => (r.trigger && isClaimed(r.trigger) ? [r.trigger] : []));
  await Promise.all(
    handedOver.map((t) =>
      store.completeTrigger(t, { kind: 'delivered', at: Date.now() }, { lazy: true }),
    ),
  );
  registrations += BATCH;
}
const cpu = process.cpuUsage(cpuStart.value);
await store.close();
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
