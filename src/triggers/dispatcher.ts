/**
 * Delivers the trigger outbox to the service manager in the background.
 *
 * Loop: claim due triggers (a lease of `leaseMs` reserves them for this process), start up to
 * `concurrency` deliveries at once, record each outcome, repeat. With nothing claimable it
 * sleeps until the next trigger is due, at most `pollIntervalMs`; wake() (called after a local
 * registration commits) and every finished delivery cut the sleep short. Every `pruneIntervalMs`
 * it deletes finished triggers older than `retentionMs`.
 *
 * At-least-once: a trigger is marked delivered only after the manager answered 2xx. If this
 * process dies mid-delivery the trigger stays pending with its lease, and any dispatcher claims
 * it again once the lease has expired. A completion whose lease was meanwhile voided (the trigger
 * was re-claimed or replaced by a newer registration) changes nothing.
 */
import { ConfigError } from '../config.js';
import type { EventBus } from '../events/bus.js';
import type { Store, Trigger, TriggerOutcome } from '../storage/store.js';
import { decide, type AttemptResult, type RetryPolicy } from './retry-policy.js';
import type { TriggerCall } from './manager-client.js';

export interface DispatcherLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the dispatcher needs from the manager client (ManagerClient, or a fake). */
export interface TriggerSender {
  send(call: TriggerCall, signal?: AbortSignal): Promise<AttemptResult>;
}

export interface DispatcherOptions extends RetryPolicy {
  store: Store;
  sender: TriggerSender;
  events: EventBus;
  logger: DispatcherLogger;
  /** Deliveries in flight at once. */
  concurrency: number;
  /** Must comfortably exceed timeoutMs (see validateTriggerTiming). */
  leaseMs: number;
  /** The manager client's per-call timeout; only used to validate the lease. */
  timeoutMs: number;
  pollIntervalMs: number;
  retentionMs: number;
  /** How often finished triggers are pruned (default 10 minutes). */
  pruneIntervalMs?: number;
  /** How often the pending gauge is re-read from the store (default 5 seconds). */
  gaugeIntervalMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface DispatcherStats {
  /** Attempts answered 2xx. */
  delivered: number;
  /** Attempts that failed and were rescheduled. */
  retried: number;
  /** Triggers failed without retry (a 4xx other than 408/425/429). */
  failed: number;
  /** Triggers given up after the maximum age. */
  dead: number;
  /** Pending triggers in the store (all processes), as last read. */
  pending: number;
  /** Deliveries in flight in this process now. */
  inFlight: number;
  /** Finished triggers deleted by retention so far. */
  pruned: number;
}

/** The lease must outlive a whole delivery (timeout) plus the completion write, with margin. */
export const LEASE_TIMEOUT_RATIO = 2;

/** Throws ConfigError unless the trigger timings make sense together. */
export function validateTriggerTiming(t: {
  timeoutMs: number;
  leaseMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  pollIntervalMs: number;
}): void {
  if (t.timeoutMs < 1) throw new ConfigError('--trigger-timeout must be at least 1ms');
  if (t.pollIntervalMs < 1) throw new ConfigError('--trigger-poll-interval must be at least 1ms');
  if (t.initialBackoffMs < 1)
    throw new ConfigError('--trigger-initial-backoff must be at least 1ms');
  if (t.maxBackoffMs < t.initialBackoffMs)
    throw new ConfigError('--trigger-max-backoff must not be less than --trigger-initial-backoff');
  if (t.leaseMs < LEASE_TIMEOUT_RATIO * t.timeoutMs) {
    throw new ConfigError(
      `--trigger-lease (${t.leaseMs} ms) must be at least ${LEASE_TIMEOUT_RATIO}x --trigger-timeout ` +
        `(${t.timeoutMs} ms), or a slow delivery could be claimed and sent twice`,
    );
  }
}

const DEFAULT_PRUNE_INTERVAL = 10 * 60_000;
const DEFAULT_GAUGE_INTERVAL = 5_000;

export class Dispatcher {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly policy: RetryPolicy;
  private readonly inFlight = new Set<Promise<void>>();
  /** Aborts in-flight calls when stop()'s grace runs out. */
  private readonly abort = new AbortController();
  private readonly counters = { delivered: 0, retried: 0, failed: 0, dead: 0, pruned: 0 };
  private pending = 0;
  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wakeRequested = false;
  private wakeUp: (() => void) | undefined;
  private nextPruneAt = 0;
  private nextGaugeAt = 0;

  constructor(private readonly opts: DispatcherOptions) {
    validateTriggerTiming(opts);
    if (opts.concurrency < 1) throw new ConfigError('--trigger-concurrency must be at least 1');
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.policy = {
      initialBackoffMs: opts.initialBackoffMs,
      maxBackoffMs: opts.maxBackoffMs,
      maxAgeMs: opts.maxAgeMs,
    };
  }

  start(): void {
    if (this.running || this.stopping) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Something may be due now (a local registration committed a trigger). */
  wake(): void {
    this.wakeRequested = true;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  stats(): DispatcherStats {
    return { ...this.counters, pending: this.pending, inFlight: this.inFlight.size };
  }

  /**
   * Stops claiming, waits up to `graceMs` for in-flight deliveries, then aborts the rest and
   * releases them (pending, due now) so that the next start retries them without waiting for
   * their lease. Resolves once every outcome has been written.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
      await Promise.race([Promise.all(this.inFlight), graceOver]);
      clearTimeout(timer);
      this.abort.abort();
      await Promise.all(this.inFlight);
    }
    this.running = false;
  }

  private async run(): Promise<void> {
    const { store, logger, concurrency, leaseMs, pollIntervalMs } = this.opts;
    while (!this.stopping) {
      this.wakeRequested = false;
      const free = concurrency - this.inFlight.size;
      let claimNow = this.now();
      let claimed = 0;
      let delay = pollIntervalMs;
      try {
        if (free > 0) {
          claimNow = this.now();
          const batch = await store.claimTriggers(claimNow, free, leaseMs);
          claimed = batch.length;
          for (const t of batch) this.track(this.deliver(t));
        }
        await this.housekeeping();
        if (claimed > 0 && claimed === free) continue; // there may be more due right now
        if (free > 0) {
          const next = await store.nextTriggerDue();
          // Due at or before the claim yet not claimed: in flight or queued behind an in-flight
          // trigger of the same device; a finished delivery (or the poll interval) wakes us.
          if (next !== undefined && next > claimNow)
            delay = Math.min(pollIntervalMs, Math.max(0, next - this.now()));
        }
      } catch (e) {
        logger.error(
          { err: e },
          'trigger dispatcher: storage error; retrying after the poll interval',
        );
      }
      if (delay > 0) await this.sleep(delay);
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      this.wake();
    });
  }

  private sleep(ms: number): Promise<void> {
    if (this.wakeRequested || this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async housekeeping(): Promise<void> {
    const now = this.now();
    if (now >= this.nextGaugeAt) {
      this.nextGaugeAt = now + (this.opts.gaugeIntervalMs ?? DEFAULT_GAUGE_INTERVAL);
      const { store } = this.opts;
      this.pending = store.countPendingTriggers
        ? await store.countPendingTriggers()
        : (await store.countTriggers()).pending;
    }
    if (now >= this.nextPruneAt) {
      this.nextPruneAt = now + (this.opts.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL);
      const pruned = await this.opts.store.pruneTriggers(now - this.opts.retentionMs);
      this.counters.pruned += pruned;
      if (pruned > 0) this.opts.logger.info({ pruned }, 'pruned finished triggers');
    }
  }

  /** One attempt of a claimed trigger; never rejects. */
  private async deliver(t: Trigger): Promise<void> {
    const { logger, sender, store } = this.opts;
    let outcome: TriggerOutcome;
    try {
      const result = await sender.send({ ip: t.ip, key: t.key }, this.abort.signal);
      // A call cut short by stop() is released (due now) for the next start, unless it got an answer.
      outcome =
        this.abort.signal.aborted && result.kind !== 'response'
          ? {
              kind: 'retry',
              at: this.now(),
              nextAttemptAt: this.now(),
              error: 'interrupted by shutdown',
            }
          : decide(t, result, this.now(), this.policy, this.random);
    } catch (e) {
      // A bug in the client; keep the trigger and retry it rather than lose it.
      outcome = decide(
        t,
        { kind: 'error', error: String(e) },
        this.now(),
        this.policy,
        this.random,
      );
    }
    let recorded: boolean;
    try {
      recorded = await store.completeTrigger(t, outcome);
    } catch (e) {
      logger.error(
        { err: e, deviceId: t.deviceId, triggerId: t.id, attempt: t.attempts },
        'could not record a trigger outcome; it will be retried after its lease expires',
      );
      return;
    }
    if (!recorded) {
      logger.debug(
        { deviceId: t.deviceId, triggerId: t.id, attempt: t.attempts, outcome: outcome.kind },
        'trigger outcome dropped: it was replaced or re-claimed meanwhile',
      );
      return;
    }
    const updated = applyOutcome(t, outcome);
    this.count(updated, outcome);
    this.opts.events.emit({ type: 'trigger', trigger: updated });
  }

  private count(t: Trigger, outcome: TriggerOutcome): void {
    const log = { deviceId: t.deviceId, triggerId: t.id, ip: t.ip, attempt: t.attempts };
    const { logger } = this.opts;
    switch (outcome.kind) {
      case 'delivered':
        this.counters.delivered++;
        this.pending = Math.max(0, this.pending - 1);
        logger.debug(log, 'trigger delivered');
        return;
      case 'retry':
        this.counters.retried++;
        logger.warn(
          {
            ...log,
            error: outcome.error,
            nextAttemptAt: new Date(outcome.nextAttemptAt).toISOString(),
          },
          'trigger attempt failed; will retry',
        );
        return;
      case 'failed':
        this.counters.failed++;
        this.pending = Math.max(0, this.pending - 1);
        logger.error({ ...log, error: outcome.error }, 'trigger failed (not retried)');
        return;
      case 'dead':
        this.counters.dead++;
        this.pending = Math.max(0, this.pending - 1);
        logger.error(
          { ...log, error: outcome.error },
          'trigger dead: undelivered after the maximum age',
        );
        return;
    }
  }
}

/** The trigger as completeTrigger left it in the store. */
export function applyOutcome(t: Trigger, outcome: TriggerOutcome): Trigger {
  return {
    ...t,
    state: outcome.kind === 'retry' ? 'pending' : outcome.kind,
    nextAttemptAt: outcome.kind === 'retry' ? outcome.nextAttemptAt : t.nextAttemptAt,
    leaseUntil: null,
    lastError: outcome.kind === 'delivered' ? null : outcome.error,
    deliveredAt: outcome.kind === 'delivered' ? outcome.at : null,
    updatedAt: outcome.at,
  };
}
