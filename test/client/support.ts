/** Real processes for the client end-to-end tests: a `ztp serve` on loopback and client runs. */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { tempDir, testApp } from '../helpers.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const BIN = join(ROOT, 'bin/ztp.mjs');
export const BUNDLE = join(ROOT, 'dist/ztp-client.mjs');

/**
 * GET `path` serves a client script to anyone (the registration guard here refuses every
 * request): of `contentType`, beginning with `shebang`, with the URL it was fetched from filled
 * in as `servedFrom(url)`, empty for a Host header that is not safe to paste (`unsafeHost`); the
 * OpenAPI document lists it.
 */
export async function assertServedScript(
  path: string,
  expected: {
    contentType: RegExp;
    shebang: string;
    servedFrom: (url: string) => string;
    unsafeHost: string;
  },
): Promise<void> {
  const t = await testApp({
    app: {
      guards: {
        registration: async () => {
          throw new Error('no credentials');
        },
      },
    },
  });
  try {
    const res = await t.app.inject({ url: path, headers: { host: 'ztp.example:8080' } });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), expected.contentType);
    assert.ok(res.body.startsWith(`${expected.shebang}\n`), res.body.slice(0, 80));
    const filledIn = `\n${expected.servedFrom('http://ztp.example:8080')}\n`;
    assert.ok(res.body.includes(filledIn), `${path} has ${filledIn.trim()}`);
    const evil = await t.app.inject({ url: path, headers: { host: expected.unsafeHost } });
    assert.ok(
      evil.body.includes(`\n${expected.servedFrom('')}\n`),
      'an unsafe Host header is not pasted',
    );
    const spec = await t.app.inject({ url: '/openapi.json' });
    assert.ok(spec.body.includes(path), `the OpenAPI document lists ${path}`);
  } finally {
    await t.close();
  }
}

export interface Served {
  url: string;
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node bin/ztp.mjs serve --port PORT` on `host` with a fresh database; resolves when listening. */
export async function serve(
  opts: { host?: string; port?: number; args?: string[] } = {},
): Promise<Served> {
  const { dir, cleanup } = tempDir('ztp-client-e2e-');
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--host',
      opts.host ?? '127.0.0.1',
      '--port',
      String(opts.port ?? 0),
      '--database',
      join(dir, 'ztp.db'),
      '--log-level',
      'info',
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 15_000);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (c: string) => (output += c));
    proc.stdout.on('data', (c: string) => {
      output += c;
      for (const line of output.split('\n')) {
        if (!line.includes('ztp listening')) continue;
        const u = (JSON.parse(line) as { url?: string }).url;
        if (u) {
          clearTimeout(timer);
          resolve(u);
        }
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}:\n${output}`));
    });
  });
  proc.removeAllListeners('exit');
  return {
    url,
    port: Number(new URL(url).port),
    proc,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      cleanup();
    },
  };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion (bounded by `killAfterMs`). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; killAfterMs?: number } = {},
): Promise<Run> {
  const started = Date.now();
  const child = spawn(cmd, args, {
    env: opts.env ?? clientEnv(),
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  if (opts.input !== undefined) {
    // A client that exits before reading its input must not fail the test with EPIPE.
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The environment without any ZTP_* variable of the developer's shell. */
export function clientEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ZTP_')) env[k] = v;
  return { ...env, ...extra };
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * This machine's identity as seen by the `ip` tool (independently of the client's code): the
 * MAC of the first default-route interface, or undefined when there is none.
 */
export function machineMac(): string | undefined {
  try {
    const out = execFileSync('ip', ['-o', 'route', 'show', 'default'], { encoding: 'utf8' });
    const dev = /\bdev (\S+)/.exec(out)?.[1];
    if (dev === undefined) return undefined;
    return readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim().toLowerCase();
  } catch {
    return undefined;
  }
}

export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** Absolute path of a command on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  try {
    return (
      execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** Tools the sh client uses besides curl/wget. */
export const GNU_TOOLS = [
  ...['awk', 'sed', 'tr', 'od', 'grep', 'head', 'cat', 'wc', 'date', 'sleep', 'mktemp', 'rm'],
  ...['mkdir', 'uname', 'ip', 'getent', 'sort', 'cut', 'dd', 'tail'],
];

/** A directory holding only the named tools (so curl can be absent, or busybox the provider). */
export function makeToolbox(dir: string, tools: Record<string, string | undefined>): string {
  mkdirSync(dir);
  for (const [tool, target] of Object.entries(tools)) {
    if (target !== undefined) symlinkSync(target, `${dir}/${tool}`);
  }
  return dir;
}

/** A PATH directory with GNU wget and no curl, or undefined when GNU wget is not installed. */
export function wgetOnlyToolbox(dir: string): string | undefined {
  const wget = which('wget');
  if (wget === undefined) return undefined;
  if (!execFileSync(wget, ['--help'], { encoding: 'utf8' }).includes('--method')) return undefined;
  return makeToolbox(dir, { ...Object.fromEntries(GNU_TOOLS.map((n) => [n, which(n)])), wget });
}

export interface Python {
  /** e.g. "2.7.18" */
  version: string;
  /** Absolute path of its interpreter (run directly: no pyenv shim, no .python-version lookup). */
  path: string;
}

/** pyenv's root: $PYENV_ROOT, else what `pyenv root` says, else ~/.pyenv. */
function pyenvRoot(): string {
  if (process.env.PYENV_ROOT) return process.env.PYENV_ROOT;
  try {
    return execFileSync('pyenv', ['root'], { encoding: 'utf8' }).trim();
  } catch {
    return join(homedir(), '.pyenv');
  }
}

/** The CPython versions pyenv has installed, oldest first. */
export function pyenvPythons(): Python[] {
  const root = pyenvRoot();
  let names: string[];
  try {
    names = readdirSync(join(root, 'versions'));
  } catch {
    return [];
  }
  const key = (v: string) =>
    v
      .split('.')
      .map((n) => n.padStart(4, '0'))
      .join('.');
  return names
    .filter((v) => /^\d+\.\d+\.\d+$/.test(v))
    .map((version) => ({ version, path: join(root, 'versions', version, 'bin', 'python') }))
    .filter((p) => existsSync(p.path))
    .sort((a, b) => key(a.version).localeCompare(key(b.version)));
}

/**
 * The interpreters the Python client is proven on: 2.7, 3.6 and the newest installed, and the
 * versions wanted but missing (a CI run must fail on those, a developer's skips them).
 */
export function clientPythons(): { found: Python[]; missing: string[] } {
  const all = pyenvPythons();
  const found: Python[] = [];
  const missing: string[] = [];
  for (const series of ['2.7', '3.6']) {
    const p = all.filter((x) => x.version.startsWith(`${series}.`)).pop();
    if (p === undefined) missing.push(series);
    else found.push(p);
  }
  const newest = all.filter((x) => x.version.startsWith('3.')).pop();
  if (newest === undefined) missing.push('3 (newest)');
  else if (!found.includes(newest)) found.push(newest);
  return { found, missing };
}
