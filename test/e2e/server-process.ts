/**
 * Runs the real CLI (`node bin/ztp.mjs serve`, built by the test script) as a child process on
 * 127.0.0.1 and a free port, for tests that need a real process: restarts, kill -9, signals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { Signal } from '../signal.js';

const root = new URL('../../', import.meta.url).pathname;

export interface ServeProcess {
  url: string;
  proc: ChildProcess;
  /** Every stdout/stderr line so far. */
  lines: string[];
  /** The first line (printed or to come) that `test` accepts. */
  printed(test: (line: string) => boolean, what: string, ms?: number): Promise<string>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill9(): Promise<void>;
}

export async function startServe(
  args: string[],
  env: Record<string, string> = {},
  // Generous: under coverage, with other test files starting servers on the same two cores, a
  // start has taken over 10 s.
  timeoutMs = 30_000,
): Promise<ServeProcess> {
  const proc = spawn(
    process.execPath,
    ['bin/ztp.mjs', 'serve', '--host', '127.0.0.1', '--port', '0', ...args],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const lineAdded = new Signal();
  let resolveUrl: (url: string) => void;
  const urlPromise = new Promise<string>((r) => (resolveUrl = r));
  for (const stream of [proc.stdout, proc.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      lineAdded.notify();
      if (line.includes('"ztp listening"')) resolveUrl((JSON.parse(line) as { url: string }).url);
    });
  }
  const exited = once(proc, 'exit');
  const timer = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`server did not start:\n${lines.join('\n')}`)),
      timeoutMs,
    ).unref(),
  );
  const failed = exited.then(() => {
    throw new Error(`server exited before listening:\n${lines.join('\n')}`);
  });
  let url: string;
  try {
    url = await Promise.race([urlPromise, timer, failed]);
  } catch (e) {
    // A server that did not come up must not outlive the test (nor keep its file running).
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    throw e;
  } finally {
    failed.catch(() => undefined);
  }
  return {
    url,
    proc,
    lines,
    printed: (test, what, ms = 5000) => lineAdded.until(() => lines.find(test), what, ms),
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
    async kill9() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
