/**
 * `npm run bench:compare`: sets the result files of two builds side by side, to check that no
 * figure regresses. Run `npm run bench` on the old and the new build in alternating runs (old,
 * new, old, new: a drift of a shared machine's speed then hits both alike), then
 *   tsx bench/compare.ts --old a.json,c.json --new b.json,d.json [--tolerance 0.1]
 * Each figure is the median over a build's files; a row is flagged when the new build's req/s
 * (or a ratio target) is lower, or its CPU per request higher, by more than the tolerance.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LoadResult } from './lib.js';

interface ResultFile {
  loads: Record<string, LoadResult>;
  targets: { target: string; value: string }[];
}

const { values: args } = parseArgs({
  options: {
    old: { type: 'string' },
    new: { type: 'string' },
    tolerance: { type: 'string', default: '0.1' },
  },
});
if (!args.old || !args.new) {
  console.error('usage: tsx bench/compare.ts --old a.json[,c.json] --new b.json[,d.json]');
  process.exit(2);
}
const tolerance = Number(args.tolerance);
const read = (list: string) =>
  list.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as ResultFile);
const oldRuns = read(args.old);
const newRuns = read(args.new);

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}
const round = (x: number) => Math.round(x * 100) / 100;
const show = (x: number | undefined) => (x === undefined ? '' : String(round(x)));

type Better = 'higher' | 'lower';
const rows: string[][] = [['figure', 'old', 'new', 'new ÷ old', 'flag']];
function compare(name: string, pick: (f: ResultFile) => number | undefined, better: Better) {
  const values = (runs: ResultFile[]) =>
    runs.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const o = median(values(oldRuns));
  const n = median(values(newRuns));
  if (o === undefined && n === undefined) return;
  const ratio = o !== undefined && n !== undefined && o !== 0 ? n / o : undefined;
  const worse =
    ratio !== undefined && (better === 'higher' ? ratio < 1 - tolerance : ratio > 1 + tolerance);
  rows.push([name, show(o), show(n), ratio === undefined ? '' : show(ratio), worse ? 'WORSE' : '']);
}

const loadNames = new Set([...oldRuns, ...newRuns].flatMap((f) => Object.keys(f.loads)));
for (const name of loadNames) {
  compare(`${name}: req/s`, (f) => f.loads[name]?.rps, 'higher');
  compare(`${name}: server CPU µs/req`, (f) => f.loads[name]?.cpuUsPerRequest, 'lower');
}
// The ratio targets (×): higher is better for each of them.
const ratioTargets = new Set(
  [...oldRuns, ...newRuns].flatMap((f) =>
    f.targets.filter((t) => t.value.endsWith('×')).map((t) => t.target),
  ),
);
for (const target of ratioTargets) {
  compare(
    target,
    (f) => {
      const t = f.targets.find((x) => x.target === target);
      return t ? Number.parseFloat(t.value) : undefined;
    },
    'higher',
  );
}

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const [i, r] of rows.entries()) {
  console.log(r.map((c, j) => c.padEnd(widths[j]!)).join('  '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
const flagged = rows.filter((r) => r[4] === 'WORSE').length;
console.log(
  `\n${oldRuns.length} old and ${newRuns.length} new result files; ` +
    `${flagged} figure(s) worse by more than ${tolerance * 100}%`,
);
