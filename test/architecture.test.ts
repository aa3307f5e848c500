import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { check } from '../scripts/check-boundaries.mjs';

describe('architecture of src/', () => {
  it('has no import cycle between folders', () => {
    assert.deepEqual(check({ rules: ['cycles'] }), []);
  });

  it('loads one database driver per engine', () => {
    assert.deepEqual(check({ rules: ['engines'] }), []);
  });

  it('reaches storage from HTTP only through services', () => {
    assert.deepEqual(check({ rules: ['layers'] }), []);
  });
});

describe('the boundary checker', () => {
  const trees: string[] = [];
  after(() => {
    for (const root of trees) rmSync(root, { recursive: true, force: true });
  });

  /** A source tree in a temporary directory: path -> file text. */
  function tree(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), 'ztp-boundaries-'));
    trees.push(root);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  }

  it('finds a cycle through folders and top-level files, naming the imports that close it', () => {
    const root = tree({
      'app.ts': "import { a } from './a/one.js';\n",
      'a/one.ts': "import { b } from '../b/two.js';\nexport const a = b;\n",
      'b/two.ts': "import type { App } from '../app.js';\nexport const b = 1;\n",
    });
    assert.deepEqual(check({ root, rules: ['cycles'] }), [
      'import cycle between folders a/ -> b/ -> app.ts -> a/:\n' +
        '  a/one.ts -> b/two.ts\n' +
        '  b/two.ts -> app.ts\n' +
        '  app.ts -> a/one.ts',
    ]);
  });

  it('lets files of one folder import each other, and skips the browser bundle', () => {
    const root = tree({
      'a/one.ts': "import { two } from './two.js';\nimport { b } from '../b/b.js';\n",
      'a/two.ts': "import { one } from './one.js';\n",
      'b/b.ts': 'export const b = 1;\n',
      'console/static/app.ts': "import type { B } from '../../b/b.js';\n",
      'b/console.ts': "export { page } from '../console/page.js';\n",
      'console/page.ts': 'export const page = 1;\n',
    });
    assert.deepEqual(check({ root, rules: ['cycles'] }), []);
  });

  it('finds a module using one driver that statically loads the other', () => {
    const root = tree({
      'db/postgres.ts': "import pg from 'pg';\nimport { mapRow } from './sqlite.js';\n",
      'db/sqlite.ts': "import Database from 'better-sqlite3';\nexport const mapRow = 1;\n",
      'db/typed.ts': "import pg from 'pg';\nimport type { Row } from './sqlite.js';\n",
    });
    assert.deepEqual(check({ root, rules: ['engines'] }), [
      'db/postgres.ts uses pg but also loads better-sqlite3 (imported by db/sqlite.ts)',
    ]);
    assert.deepEqual(check({ root, rules: ['cycles'] }), [], 'one folder has no cycle');
  });

  it('finds HTTP code (http/ or any route file) importing a store or db/ at runtime, or taking a store type', () => {
    const root = tree({
      'http/routes.ts': "import { TRIGGER_STATES } from '../triggers/outbox.js';\n",
      'http/ops.ts': "import type { OutboxStore } from '../triggers/outbox.js';\n",
      'http/views.ts': "import type { Device } from '../devices/store.js';\n",
      'http/ready.ts': "import type { Database } from '../db/unit-of-work.js';\n",
      'devices/routes.ts':
        "import type { FastifyInstance } from 'fastify';\nimport { openDatabase } from '../db/open.js';\n",
      'devices/service.ts': "import { TRIGGER_STATES } from '../triggers/outbox.js';\n",
      'devices/store.ts': 'export interface Device {}\n',
      'triggers/outbox.ts': 'export const TRIGGER_STATES = [];\n',
      'db/open.ts': 'export const openDatabase = 1;\n',
      'db/unit-of-work.ts': 'export interface Database {}\n',
    });
    assert.deepEqual(check({ root, rules: ['layers'] }).sort(), [
      'devices/routes.ts imports db/open.ts (at runtime): HTTP reaches storage through a service',
      'http/ops.ts imports triggers/outbox.ts (the OutboxStore type): HTTP reaches storage through a service',
      'http/ready.ts imports db/unit-of-work.ts (the Database type): HTTP reaches storage through a service',
      'http/routes.ts imports triggers/outbox.ts (at runtime): HTTP reaches storage through a service',
    ]);
  });
});
