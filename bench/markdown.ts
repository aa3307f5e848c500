/**
 * Prints the tables of a `npm run bench` result file as Markdown (for docs/performance.md).
 *   tsx bench/markdown.ts bench/results/<date>.json
 */
import { readFileSync } from 'node:fs';
import type { LoadResult } from './lib.js';

interface Results {
  date: string;
  machine: {
    nproc: number;
    cpu: string;
    memoryMB: number;
    node: string;
    loadTool: string;
    loadavgStart: number[];
    loadavgEnd: number[];
  };
  seconds: number;
  secondsPerRun: number;
  loads: Record<string, LoadResult>;
  results: { registerCpu?: Record<string, number> };
  targets: { target: string; value: string; goal: string; pass: boolean | null }[];
}

const file = process.argv[2];
if (!file) {
  console.error('usage: tsx bench/markdown.ts <results.json>');
  process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8')) as Results;
const m = r.machine;
console.log(
  `Run of ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.seconds} s in all, ${r.secondsPerRun} s per load run; ` +
    `${m.nproc} cores (${m.cpu}), ${Math.round(m.memoryMB / 1024)} GB, Node ${m.node}, ${m.loadTool}; ` +
    `load average ${m.loadavgStart.join(' / ')} at the start and ${m.loadavgEnd.join(' / ')} at the end.\n`,
);
console.log(
  '| run (50 or 1 connections) | req/s | p50 ms | p99 ms | server CPU µs/req | server RSS MB |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, l] of Object.entries(r.loads)) {
  console.log(
    `| ${name} | ${l.rps} | ${l.p50ms} | ${l.p99ms} | ${l.cpuUsPerRequest ?? ''} | ${l.rssPeakMB ?? ''} |`,
  );
}
const b = r.results.registerCpu;
if (b) {
  console.log(
    '\n| CPU per registration, µs (c50) | server main thread | server other threads | manager | wrk and kernel | idle |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(
    `| ztp register | ${b.ztpMainThreadUs} | ${b.ztpOtherThreadsUs} | ${b.managerUs} | ${b.restUs} | ${b.idleUs} |`,
  );
  console.log(
    `| baseline group commit | ${b.baselineServerUs} | | | ${b.baselineRestUs} | ${b.baselineIdleUs} |`,
  );
  if (b.equalMainThreadUs !== undefined) {
    console.log(
      `| equal-work baseline | ${b.equalMainThreadUs} | ${b.equalOtherThreadsUs} | ${b.equalManagerUs} | ${b.equalRestUs} | ${b.equalIdleUs} |`,
    );
  }
  const equal =
    b.equalRps === undefined
      ? ''
      : `, ${b.equalCeilingRatio}× the equal-work baseline's ${b.equalRps}`;
  console.log(
    `\nWith the idle time used too, ztp could reach at most ${b.ztpCeilingRps} req/s: ${b.ceilingRatio}× the baseline's ${b.baselineRps}${equal}.`,
  );
}
console.log('\n| target | goal | measured | met |');
console.log('| --- | --- | --- | --- |');
for (const t of r.targets) {
  const met = t.pass === null ? '—' : t.pass ? 'yes' : '**no**';
  console.log(`| ${t.target} | ${t.goal} | ${t.value} | ${met} |`);
}
