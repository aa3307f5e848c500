// Runs the test suite: builds dist/ (end-to-end tests start the real CLI), then node:test via
// tsx over an explicit file list. On Node 20 `tsx --test` given a directory or nothing runs zero
// tests and exits 0, so the list is collected here and an empty list is an error.
// Usage: npm test [-- FILE_OR_SUBSTRING ...]   (no coverage gate when filtering)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (entry.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out.sort();
}

const filters = process.argv.slice(2);
const all = collect(join(root, 'test'));
const files = filters.length === 0 ? all : all.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error(`no test files found${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run(process.execPath, ['scripts/build.mjs']);

const concurrency = process.env.ZTP_TEST_CONCURRENCY ?? '3';
// A test that hangs fails after 5 minutes, and a file whose tests are done exits even if a
// failed test left a server or socket open: CI reports a failure instead of waiting forever.
const nodeArgs = [
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-timeout=300000',
  '--test-force-exit',
  ...files,
];
if (filters.length === 0 && process.env.ZTP_TEST_COVERAGE !== '0') {
  run(join(root, 'node_modules/.bin/c8'), [
    '--check-coverage',
    '--lines=90',
    '--reporter=text-summary',
    '--include=src/**',
    '--exclude=src/console/static/**',
    // Without a PostgreSQL server its suites skip; do not count its store as untested code.
    ...(process.env.ZTP_TEST_DATABASE_URL ? [] : ['--exclude=src/storage/postgres.ts']),
    process.execPath,
    ...nodeArgs,
  ]);
} else {
  run(process.execPath, nodeArgs);
}
