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

/** Imports `target` and prints what it loaded: {specifiers, cjsFiles}. */
function loaderScript(target: string): string {
  return `
import { createRequire, register } from 'node:module';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)}, {
  data: { port: port2 },
  transferList: [port2],
});
await import(${JSON.stringify(target)});
const specifiers = [];
for (let m; (m = receiveMessageOnPort(port1)); ) specifiers.push(m.message);
port1.close();
const cjsFiles = Object.keys(createRequire(import.meta.url).cache);
process.stdout.write(JSON.stringify({ specifiers, cjsFiles }));
`;
}

async function loadedBy(module: string): Promise<{ specifiers: string[]; cjsFiles: string[] }> {
  const target = new URL(`../../src/storage/${module}`, import.meta.url).href;
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', loaderScript(target)],
    { cwd: new URL('../..', import.meta.url).pathname },
  );
  return JSON.parse(stdout) as { specifiers: string[]; cjsFiles: string[] };
}

const packageFiles = (files: string[], name: string) =>
  files.filter((f) => f.includes(`/node_modules/${name}/`));

describe('each engine loads only its own driver', () => {
  it('the PostgreSQL store loads pg and never better-sqlite3', async () => {
    const { specifiers, cjsFiles } = await loadedBy('postgres.ts');
    assert.ok(specifiers.includes('pg'), 'the recorder sees the engine load its own driver');
    assert.ok(!specifiers.includes('better-sqlite3'), specifiers.join('\n'));
    assert.deepEqual(packageFiles(cjsFiles, 'better-sqlite3'), []);
  });

  it('the SQLite store loads better-sqlite3 and never pg', async () => {
    const { specifiers, cjsFiles } = await loadedBy('sqlite.ts');
    assert.ok(
      specifiers.includes('better-sqlite3'),
      'the recorder sees the engine load its own driver',
    );
    assert.ok(!specifiers.includes('pg'), specifiers.join('\n'));
    assert.deepEqual(packageFiles(cjsFiles, 'pg'), []);
  });
});
