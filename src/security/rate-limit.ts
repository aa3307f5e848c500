/**
 * Per-key token bucket with bounded memory: at most `maxKeys` buckets, least recently used
 * evicted first (an evicted bucket is most likely full again, so little is forgotten).
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface RateLimiterOptions {
  /** Most keys tracked at once (default 100000, about 10 MB). */
  maxKeys?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export type Take = { ok: true } | { ok: false; retryAfterMs: number };

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** tokens per millisecond */
  private readonly rate: number;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    opts: RateLimiterOptions = {},
  ) {
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.now = opts.now ?? Date.now;
    this.rate = limit / windowMs;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string): Take {
    const now = this.now();
    const bucket = this.buckets.get(key);
    let tokens = this.limit;
    if (bucket) {
      tokens = Math.min(this.limit, bucket.tokens + Math.max(0, now - bucket.at) * this.rate);
      this.buckets.delete(key); // re-inserted below: Map order is least recently used first
    }
    const ok = tokens >= 1;
    if (ok) tokens -= 1;
    this.buckets.set(key, { tokens, at: now });
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return ok ? { ok } : { ok, retryAfterMs: Math.ceil((1 - tokens) / this.rate) };
  }
}

/**
 * The bucket key of a source address: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 by its
 * /64 prefix (one host usually owns a whole /64, so per-address keys would be free to evade).
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  if (isIPv4(address)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (!isIPv6(address)) return address.slice(0, 64);
  const bare = address.replace(/%.*$/, '').toLowerCase();
  const [head, tail] = bare.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  let groups = headGroups;
  if (tail !== undefined) {
    const tailGroups = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 tail counts as two groups; it is never in the first four anyway.
    const tailCount = tailGroups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    groups = [
      ...headGroups,
      ...Array<string>(Math.max(0, 8 - headGroups.length - tailCount)).fill('0'),
      ...tailGroups,
    ];
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
