/**
 * Registration throughput on PostgreSQL with one and with two `ztp serve` replicas (and SQLite
 * for reference), on this machine. Prints numbers; asserts nothing.
 *
 *   npx tsx bench/pg-replicas.ts [--postgres postgres://postgres@127.0.0.1:5432/test]
 *                                [--seconds 8] [--connections 32] [--triggers on|off]
 *
 * Each run: fresh database, `node bin/ztp.mjs serve` process(es) with a local manager (so every
 * registration also queues a trigger that the dispatchers deliver), and PUTs to
 * /ztp/register/<new id> from a closed loop of --connections, split evenly over the replicas. Needs `npm run build` first.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { startServe, type ServeProcess } from '../test/e2e/server-process.js';

const { values: args } = parseArgs({
  options: {
    postgres: {
      type: 'string',
      default: process.env.ZTP_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
    seconds: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    triggers: { type: 'string', default: 'on' },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);

async function admin(text: string) {
  const c = new pg.Client({ connectionString: args.postgres });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

interface LoadResult {
  ok: number;
  failed: number;
  latencies: number[];
}

/** Closed loop: `connections` workers each PUT one new device after the other for SECONDS. */
async function load(url: string, connections: number, prefix: string): Promise<LoadResult> {
  const pool = new Pool(url, { connections });
  const result: LoadResult = { ok: 0, failed: 0, latencies: [] };
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        const i = n++;
        const t0 = performance.now();
        try {
          const res = await pool.request({
            method: 'PUT',
            path: `/ztp/register/${prefix}-${i}`,
            headers: { 'content-type': 'application/json' },
            body: `{"ip":"10.${i % 250}.${(i >> 8) % 250}.1"}`,
          });
          await res.body.dump();
          if (res.statusCode < 300) result.ok++;
          else result.failed++;
        } catch {
          result.failed++;
        }
        result.latencies.push(performance.now() - t0);
      }
    }),
  );
  await pool.close();
  return result;
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

async function run(label: string, database: string, replicas: number, managerUrl: string) {
  const procs: ServeProcess[] = [];
  try {
    for (let i = 0; i < replicas; i++)
      procs.push(
        await startServe([
          '--database',
          database,
          ...(args.triggers === 'off' ? [] : ['--manager-url', managerUrl]),
        ]),
      );
    const results = await Promise.all(
      procs.map((p, i) => load(p.url, Math.ceil(CONNECTIONS / replicas), `r${i}`)),
    );
    const ok = results.reduce((sum, r) => sum + r.ok, 0);
    const failed = results.reduce((sum, r) => sum + r.failed, 0);
    const latencies = results.flatMap((r) => r.latencies);
    console.log(
      `${label.padEnd(24)} ${(ok / SECONDS).toFixed(0).padStart(6)} registrations/s   p50 ${percentile(latencies, 50).toFixed(1)} ms   p99 ${percentile(latencies, 99).toFixed(1)} ms   failed ${failed}`,
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

const manager = createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => manager.listen(0, '127.0.0.1', r));
const managerUrl = `http://127.0.0.1:${(manager.address() as AddressInfo).port}`;

console.log(
  `${SECONDS} s per run, ${CONNECTIONS} connections in total, triggers ${args.triggers === 'off' ? 'off' : 'on (local manager)'}`,
);
const dir = mkdtempSync(join(tmpdir(), 'ztp-bench-'));
try {
  await run('SQLite, 1 process', join(dir, 'ztp.db'), 1, managerUrl);
  for (const replicas of [1, 2]) {
    const name = `ztp_bench_${Date.now()}`;
    await admin(`CREATE DATABASE ${name}`);
    const u = new URL(args.postgres);
    u.pathname = `/${name}`;
    try {
      await run(
        `PostgreSQL, ${replicas} replica${replicas > 1 ? 's' : ''}`,
        u.href,
        replicas,
        managerUrl,
      );
    } finally {
      await admin(`DROP DATABASE ${name} WITH (FORCE)`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  manager.close();
}
