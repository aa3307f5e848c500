import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffDelay,
  classify,
  decide,
  describe as describeResult,
  parseRetryAfter,
  type AttemptResult,
} from '../../src/triggers/retry-policy.js';

const policy = { initialBackoffMs: 1000, maxBackoffMs: 300_000, maxAgeMs: 86_400_000 };
const status = (s: number, retryAfter?: string): AttemptResult => ({
  kind: 'response',
  status: s,
  retryAfter,
});
/** A random source that always returns just under 1: the backoff ceiling. */
const top = () => 1 - Number.EPSILON;

describe('classify', () => {
  it('2xx is delivered', () => {
    for (const s of [200, 201, 202, 204, 299])
      assert.equal(classify(status(s)), 'delivered', `${s}`);
  });
  it('408, 425, 429, 5xx, timeouts and connection errors are retried', () => {
    for (const s of [408, 425, 429, 500, 502, 503, 504, 599])
      assert.equal(classify(status(s)), 'retry', `${s}`);
    assert.equal(classify({ kind: 'timeout', error: 'timeout after 10 ms' }), 'retry');
    assert.equal(classify({ kind: 'error', error: 'connect ECONNREFUSED' }), 'retry');
  });
  it('other 4xx, 1xx and 3xx fail without retry', () => {
    for (const s of [400, 401, 403, 404, 405, 409, 410, 422, 451, 301, 302, 101])
      assert.equal(classify(status(s)), 'failed', `${s}`);
  });
});

describe('backoffDelay (full jitter)', () => {
  it('the ceiling starts at the initial backoff and doubles per failed attempt', () => {
    assert.equal(backoffDelay(1, policy, top), 999);
    assert.equal(backoffDelay(2, policy, top), 1999);
    assert.equal(backoffDelay(3, policy, top), 3999);
    assert.equal(backoffDelay(5, policy, top), 15_999);
  });
  it('is capped at the maximum backoff, also for huge attempt counts', () => {
    assert.equal(backoffDelay(9, policy, top), 255_999);
    assert.equal(backoffDelay(10, policy, top), 299_999);
    assert.equal(backoffDelay(10_000, policy, top), 299_999);
  });
  it('is a uniform fraction of the ceiling', () => {
    assert.equal(
      backoffDelay(3, policy, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(3, policy, () => 0.5),
      2000,
    );
    assert.equal(
      backoffDelay(3, policy, () => 0.25),
      1000,
    );
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
  });
  it('reads an HTTP date relative to now; a past date is 0', () => {
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
  });
  it('ignores absent or invalid values', () => {
    assert.equal(parseRetryAfter(undefined, now), undefined);
    for (const v of ['', 'soon', '-5', '1.5', 'Fooday, 99 Bar 2026'])
      assert.equal(parseRetryAfter(v, now), undefined, v);
  });
});

describe('decide', () => {
  const now = 1_000_000_000;
  const fresh = { attempts: 1, createdAt: now - 10 };

  it('records delivery', () => {
    assert.deepEqual(decide(fresh, status(204), now, policy, top), { kind: 'delivered', at: now });
  });

  it('fails a 400 with the status and the start of the body as error', () => {
    const out = decide(fresh, { kind: 'response', status: 400, detail: 'bad ip' }, now, policy);
    assert.deepEqual(out, { kind: 'failed', at: now, error: 'HTTP 400: bad ip' });
  });

  it('schedules a retry with the jittered backoff of the attempt count', () => {
    const out = decide({ ...fresh, attempts: 3 }, status(503), now, policy, () => 0.5);
    assert.deepEqual(out, { kind: 'retry', at: now, nextAttemptAt: now + 2000, error: 'HTTP 503' });
  });

  it('keeps the error of a timeout or connection error', () => {
    const out = decide(fresh, { kind: 'timeout', error: 'timeout after 10 ms' }, now, policy, top);
    assert.equal(out.kind, 'retry');
    assert.equal(out.error, 'timeout after 10 ms');
  });

  it('honours Retry-After as a lower bound on the delay', () => {
    const out = decide(fresh, status(429, '30'), now, policy, () => 0);
    assert.equal(out.kind === 'retry' && out.nextAttemptAt, now + 30_000);
    // a Retry-After shorter than the backoff does not shorten it
    const short = decide({ ...fresh, attempts: 5 }, status(503, '1'), now, policy, () => 0.5);
    assert.equal(short.kind === 'retry' && short.nextAttemptAt, now + 8000);
  });

  it('bounds Retry-After by the maximum backoff', () => {
    const out = decide(fresh, status(503, '86400'), now, policy, () => 0);
    assert.equal(out.kind === 'retry' && out.nextAttemptAt, now + policy.maxBackoffMs);
  });

  it('ignores Retry-After on answers that are not retried', () => {
    assert.equal(decide(fresh, status(404, '10'), now, policy).kind, 'failed');
  });

  it('marks a trigger dead once it is older than the maximum age', () => {
    const old = { attempts: 40, createdAt: now - policy.maxAgeMs };
    const out = decide(old, status(500), now, policy, top);
    assert.equal(out.kind, 'dead');
    assert.equal(out.error, 'HTTP 500 (undelivered after 86400000 ms)');
  });

  it('never schedules the next attempt after the maximum age: the last one is at the deadline', () => {
    const nearlyOld = { attempts: 20, createdAt: now - policy.maxAgeMs + 5000 };
    const out = decide(nearlyOld, status(500), now, policy, top);
    assert.equal(out.kind === 'retry' && out.nextAttemptAt, now + 5000);
    const then = decide({ ...nearlyOld, attempts: 21 }, status(500), now + 5000, policy, top);
    assert.equal(then.kind, 'dead');
  });

  it('describes redirects as not followed', () => {
    assert.equal(describeResult(status(301)), 'HTTP 301 (redirects are not followed)');
    assert.equal(decide(fresh, status(302), now, policy).kind, 'failed');
  });
});
