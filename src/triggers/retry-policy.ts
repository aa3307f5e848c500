/**
 * What to do after one delivery attempt of a manager trigger. Pure: no I/O, time and randomness
 * are passed in.
 *
 * - 2xx: delivered.
 * - 408, 425, 429, 5xx, a timeout or a connection error: retried after an exponential backoff
 *   with full jitter: a uniformly random delay in [0, min(maxBackoff, initialBackoff * 2^(n-1)))
 *   after the n-th failed attempt.
 * - `Retry-After` (delay-seconds or an HTTP date) on a retryable answer is a lower bound for the
 *   delay, itself bounded by maxBackoff: a manager can slow us down, but never park a trigger
 *   for longer than the operator's configured cap.
 * - Any other answer (other 4xx, and 1xx/3xx: redirects are not followed) fails the trigger
 *   without retry; an operator re-queues it once the cause is fixed.
 * - Max age: a retryable failure at or after createdAt + maxAge marks the trigger dead; before
 *   that, the next attempt is never scheduled later than that deadline, so the last attempt
 *   happens at the deadline.
 */
import type { Trigger, TriggerOutcome } from './outbox.js';

/** The result of one attempt, as the manager client reports it. */
export type AttemptResult =
  | {
      kind: 'response';
      status: number;
      /** Raw Retry-After header, when present. */
      retryAfter?: string | undefined;
      /** Start of the response body (for the trigger's lastError), possibly empty. */
      detail?: string | undefined;
    }
  | { kind: 'timeout'; error: string }
  | { kind: 'error'; error: string };

export type Verdict = 'delivered' | 'retry' | 'failed';

export interface RetryPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  maxAgeMs: number;
}

const RETRYABLE_STATUS = new Set([408, 425, 429]);

export function classify(result: AttemptResult): Verdict {
  if (result.kind !== 'response') return 'retry';
  const { status } = result;
  if (status >= 200 && status < 300) return 'delivered';
  if (status >= 500 || RETRYABLE_STATUS.has(status)) return 'retry';
  return 'failed';
}

/**
 * Full-jitter backoff after `attempts` failed attempts (1 = the first one failed).
 * `random` returns a number in [0, 1), like Math.random.
 */
export function backoffDelay(attempts: number, policy: RetryPolicy, random: () => number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 52);
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds a Retry-After value asks us to wait, or undefined when it is absent or not valid.
 * A date in the past means 0.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP-date (IMF-fixdate and the obsolete forms Date.parse understands); must name a weekday
  // or a month so that bare numbers with signs or decimals are not taken as dates.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** A short human-readable description of a failed attempt, stored as the trigger's lastError. */
export function describe(result: AttemptResult): string {
  if (result.kind !== 'response') return result.error;
  const detail = result.detail ? `: ${result.detail}` : '';
  const redirect =
    result.status >= 300 && result.status < 400 ? ' (redirects are not followed)' : '';
  return `HTTP ${result.status}${redirect}${detail}`;
}

/** The outcome to record for `trigger` (whose `attempts` already counts this attempt). */
export function decide(
  trigger: Pick<Trigger, 'attempts' | 'createdAt'>,
  result: AttemptResult,
  now: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): TriggerOutcome {
  const verdict = classify(result);
  if (verdict === 'delivered') return { kind: 'delivered', at: now };
  const error = describe(result);
  if (verdict === 'failed') return { kind: 'failed', at: now, error };
  const deadline = trigger.createdAt + policy.maxAgeMs;
  if (now >= deadline) {
    return { kind: 'dead', at: now, error: `${error} (undelivered after ${policy.maxAgeMs} ms)` };
  }
  let delay = backoffDelay(trigger.attempts, policy, random);
  const asked = result.kind === 'response' ? parseRetryAfter(result.retryAfter, now) : undefined;
  if (asked !== undefined) delay = Math.max(delay, Math.min(asked, policy.maxBackoffMs));
  return { kind: 'retry', at: now, nextAttemptAt: Math.min(now + delay, deadline), error };
}
