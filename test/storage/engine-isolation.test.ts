/**
 * Each engine module loads only its own driver: a PostgreSQL deployment must not need (or load)
 * better-sqlite3's native binding, nor SQLite pg. Checked at run time in a fresh process, which
 * records every specifier resolved by an ESM import and every CommonJS module loaded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Resolve hook: reports each specifier to the loading thread. */
const HOOKS = `
let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  port.postMessage(specifier);
  return next(specifier, context);
}`;

/** Imports `targets` and prints what they loaded: {specifiers, cjsFiles}. */
function loaderScript(targets: string[]): string {
  return `
import { createRequire, register } from 'node:module';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)}, {
  data: { port: port2 },
  transferList: [port2],
});
for (const target of ${JSON.stringify(targets)}) await import(target);
const specifiers = [];
for (let m; (m = receiveMessageOnPort(port1)); ) specifiers.push(m.message);
port1.close();
const cjsFiles = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(JSON.stringify({ specifiers, cjsFiles }));
`;
}

async function loadedBy(modules: string[]): Promise<{ specifiers: string[]; cjsFiles: string[] }> {
  const targets = modules.map((m) => new URL(`../../src/${m}`, import.meta.url).href);
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', loaderScript(targets)],
    { cwd: new URL('../..', import.meta.url).pathname },
  );
  return JSON.parse(stdout) as { specifiers: string[]; cjsFiles: string[] };
}

/** Each feature's engine modules, and the database core of the engine. */
const POSTGRES_MODULES = [
  'db/postgres/database.ts',
  'devices/store-postgres.ts',
  'devices/read-model-postgres.ts',
  'triggers/outbox-postgres.ts',
  'triggers/read-model-postgres.ts',
  'token-grants/store-postgres.ts',
  'audit/store-postgres.ts',
];
const SQLITE_MODULES = POSTGRES_MODULES.map((m) => m.replaceAll('postgres', 'sqlite'));

const packageFiles = (files: string[], name: string) =>
  files.filter((f) => f.includes(`/node_modules/${name}/`));

describe('each engine loads only its own driver', () => {
  it('the PostgreSQL modules of every feature load pg and never better-sqlite3', async () => {
    const { specifiers, cjsFiles } = await loadedBy(POSTGRES_MODULES);
    assert.ok(specifiers.includes('pg'), 'the recorder sees the engine load its own driver');
    assert.ok(!specifiers.includes('better-sqlite3'), specifiers.join('\n'));
    assert.deepEqual(packageFiles(cjsFiles, 'better-sqlite3'), []);
  });

  it('the SQLite modules of every feature load better-sqlite3 and never pg', async () => {
    const { specifiers, cjsFiles } = await loadedBy(SQLITE_MODULES);
    assert.ok(
      specifiers.includes('better-sqlite3'),
      'the recorder sees the engine load its own driver',
    );
    assert.ok(!specifiers.includes('pg'), specifiers.join('\n'));
    assert.deepEqual(packageFiles(cjsFiles, 'pg'), []);
  });
});
