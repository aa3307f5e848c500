/**
 * Cold start of the device client: `node bin/ztp.mjs register --dry-run` and
 * `node dist/ztp-client.mjs --dry-run` (full detection of id and source address, nothing sent),
 * each a fresh process, N runs. Prints min / median / p90 wall time in milliseconds; the target is
 * under 150 ms. `node -e 0` and the sh client are measured alongside for context.
 *
 * Usage: npm run bench:client [-- RUNS]   (runs `npm run build` first if dist/ is missing)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const runs = Math.max(3, Number(process.argv[2] ?? process.env.RUNS ?? 30));
const SERVER = ['--server', 'http://127.0.0.1:9'];
const TARGET_MS = 150;

if (!existsSync(join(ROOT, 'dist/ztp-client.mjs'))) {
  spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: 'inherit' });
}

function measure(cmd: string, args: string[]): number[] {
  const times: number[] = [];
  // One unmeasured run warms the page cache, as on a device that has booted.
  for (let i = 0; i <= runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    }
    if (i > 0) times.push(ms);
  }
  return times.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

const cases: [string, string, string[]][] = [
  ['node -e 0 (baseline)', process.execPath, ['-e', '0']],
  ['ztp register --dry-run', process.execPath, ['bin/ztp.mjs', 'register', '--dry-run', ...SERVER]],
  ['ztp-client.mjs --dry-run', process.execPath, ['dist/ztp-client.mjs', '--dry-run', ...SERVER]],
  ['sh ztp-client.sh --dry-run', 'sh', ['src/client/ztp-client.sh', '--dry-run', ...SERVER]],
];

console.log(
  `client cold start, ${runs} runs each (node ${process.version}), target < ${TARGET_MS} ms`,
);
console.log('case'.padEnd(30), 'min'.padStart(8), 'median'.padStart(8), 'p90'.padStart(8));
for (const [name, cmd, args] of cases) {
  const t = measure(cmd, args);
  const row = [t[0]!, pct(t, 50), pct(t, 90)].map((v) => v.toFixed(1).padStart(8));
  const verdict =
    name.includes('--dry-run') && name.startsWith('ztp')
      ? pct(t, 50) < TARGET_MS
        ? '  under target'
        : '  OVER TARGET'
      : '';
  console.log(name.padEnd(30), ...row, verdict);
}
