/**
 * The waiting policy of the device client: retry what may get better (connection errors,
 * timeouts, 408, 429, 5xx, a network that is not up yet) with exponential backoff and jitter until
 * --wait runs out; stop at once on anything else. Clock, sleep and randomness are injected.
 */
import type { Outcome } from './http.js';

export const INITIAL_BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 30_000;
/** An attempt is never cut shorter than this by the --wait deadline. */
export const MIN_ATTEMPT_MS = 1000;

export type Final =
  | Exclude<Outcome, { kind: 'retry' }>
  | { kind: 'gave-up'; attempts: number; elapsedMs: number; reason: string };

export interface RetryDeps {
  now(): number;
  sleep(ms: number): Promise<void>;
  random(): number;
  /** Progress lines (stderr unless --quiet). */
  log(line: string): void;
}

export const realRetryDeps = (log: (line: string) => void): RetryDeps => ({
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  random: Math.random,
  log,
});

/** Delay before retry number `n` (1-based): "equal jitter", between half and all of the ceiling. */
export function backoffMs(n: number, random: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, INITIAL_BACKOFF_MS * 2 ** (n - 1));
  return Math.round(ceiling / 2 + (random * ceiling) / 2);
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/**
 * Calls `attemptFn(timeoutMs)` until it gives a final outcome or `waitMs` is spent. With
 * waitMs 0 there is exactly one attempt.
 */
export async function withRetry(
  attemptFn: (timeoutMs: number) => Promise<Outcome>,
  opts: { waitMs: number; timeoutMs: number },
  deps: RetryDeps,
): Promise<Final> {
  const start = deps.now();
  const deadline = start + opts.waitMs;
  for (let n = 1; ; n++) {
    const left = deadline - deps.now();
    const timeoutMs =
      opts.waitMs === 0 ? opts.timeoutMs : Math.min(opts.timeoutMs, Math.max(left, MIN_ATTEMPT_MS));
    const outcome = await attemptFn(timeoutMs);
    if (outcome.kind !== 'retry') return outcome;

    const now = deps.now();
    const remaining = deadline - now;
    const gaveUp = (why: string): Final => ({
      kind: 'gave-up',
      attempts: n,
      elapsedMs: now - start,
      reason: why,
    });
    if (remaining <= 0) return gaveUp(outcome.reason);
    let delay: number;
    if (outcome.retryAfterMs !== undefined) {
      // Honour the server's pacing; a little jitter so a fleet that rebooted together spreads out.
      delay = Math.round(outcome.retryAfterMs * (1 + 0.2 * deps.random()));
      if (outcome.retryAfterMs > remaining) {
        return gaveUp(
          `${outcome.reason} (the server asked to retry after ${secs(outcome.retryAfterMs)}, beyond --wait)`,
        );
      }
    } else {
      delay = backoffMs(n, deps.random());
    }
    delay = Math.min(delay, remaining);
    deps.log(
      `attempt ${n} failed: ${outcome.reason}; retrying in ${secs(delay)} (giving up in ${secs(remaining)})`,
    );
    await deps.sleep(delay);
  }
}
