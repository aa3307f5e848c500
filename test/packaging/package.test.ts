/**
 * What a new user installs: a clean `npm ci` on the oldest supported Node warns of no engine and
 * no unreviewed install script, the README states the same minimum Node as `engines`, the packed
 * tarball holds what runs and nothing else, and no documented command asks the public registry for
 * a package called `ztp`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = new URL('../../', import.meta.url).pathname;

interface LockEntry {
  version?: string;
  dev?: boolean;
  engines?: Record<string, string> | string[];
  hasInstallScript?: boolean;
}
interface PackageJson {
  name: string;
  engines: { node: string };
  files: string[];
  allowScripts?: Record<string, boolean>;
}

// semver is what npm itself uses to check `engines`; it comes with the runtime dependencies.
const semver = createRequire(import.meta.url)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};
const installed = Object.entries(lock.packages).filter(([path]) => path !== '');
const oldestNode = semver.minVersion(pkg.engines.node)?.version ?? '';

describe('npm ci on a supported Node', () => {
  it('every installed package accepts the oldest Node that engines allows (no EBADENGINE)', () => {
    assert.match(oldestNode, /^20\./);
    const refusing = installed
      .map(([path, entry]) => ({
        path,
        node: Array.isArray(entry.engines) ? undefined : entry.engines?.node,
      }))
      .filter(({ node }) => node !== undefined && !semver.satisfies(oldestNode, node))
      .map(({ path, node }) => `${path} (node ${node})`);
    assert.deepEqual(refusing, []);
  });

  it('every package with an install script is reviewed in allowScripts', () => {
    const unreviewed = installed
      .filter(([, entry]) => entry.hasInstallScript)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length))
      .filter((name) => pkg.allowScripts?.[name] !== true);
    assert.deepEqual(unreviewed, []);
  });

  it('the README states the same minimum Node as engines', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const stated = /Node\.js ≥ (\d+\.\d+(?:\.\d+)?)/.exec(readme)?.[1];
    assert.equal(stated, oldestNode);
  });
});

describe('the packed tarball', () => {
  // --ignore-scripts: npm test has just built dist/; packing must not rebuild it under other tests.
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      encoding: 'utf8',
    }),
  ) as { name: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path).sort();

  it('is scoped, so no one else’s `ztp` package can be confused with it', () => {
    assert.match(packed[0]!.name, /^@[^/]+\/ztp$/);
  });

  it('holds the CLI, the device client, the console and the systemd unit', () => {
    for (const needed of [
      'bin/ztp.mjs',
      'dist/cli.mjs',
      'dist/ztp-client.mjs',
      'dist/console/index.html',
      'contrib/ztp-register.service',
      'package.json',
      'README.md',
    ]) {
      assert.ok(files.includes(needed), `${needed} is missing from the tarball`);
    }
  });

  it('holds no sources, tests, benches, scripts or source maps', () => {
    const extra = files.filter((f) =>
      /^(src|test|bench|scripts|deploy|docs)\/|\.map$|\.ts$/.test(f),
    );
    assert.deepEqual(extra, []);
  });
});

describe('documented commands', () => {
  const docs = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];

  it('never run `npx ztp` (outside a clone it fetches whatever the registry calls ztp)', () => {
    const offending = docs.flatMap((doc) =>
      readFileSync(join(root, doc), 'utf8')
        .split('\n')
        .map((line, i) => ({ where: `${doc}:${i + 1}`, line }))
        .filter(({ line }) => /\bnpx\s+ztp\s+[\w-]|\bnpm\s+exec\s+ztp\b/.test(line))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
    assert.deepEqual(offending, []);
  });
});
