/**
 * Delivers the trigger outbox to the service manager in the background.
 *
 * Loop: claim due triggers (a lease of `leaseMs` reserves them for this process), start up to
 * `concurrency` deliveries at once, record each outcome, repeat. With nothing claimable it
 * sleeps until the next trigger is due, at most `pollIntervalMs`; wake() (called after a local
 * registration commits) and every finished delivery cut the sleep short. Every `pruneIntervalMs`
 * it deletes finished triggers older than `retentionMs`.
 *
 * Hand-over: a registration, through the TriggerQueue (queue.ts), may reserve a place
 * (reserveHandOver) and have its new trigger
 * leased to this dispatcher in its own transaction; handOver() then delivers it without a claim,
 * at once or, with every slot busy, before anything is claimed (at most `concurrency` wait so,
 * well within their lease), and records a 2xx lazily (with the next batch). The loop is not
 * woken for it unless something waits for a slot or for this trigger (`quiet`). A trigger the
 * outbox did not lease (coalesced, or queued behind an older one of its device) goes through
 * the loop as before.
 *
 * At-least-once: a trigger is marked delivered only after the manager answered 2xx. If this
 * process dies mid-delivery the trigger stays pending with its lease, and any dispatcher claims
 * it again once the lease has expired. A completion whose lease was meanwhile voided (the trigger
 * was re-claimed or replaced by a newer registration) changes nothing.
 */
import { ConfigError } from '../errors.js';
import {
  settle,
  withoutLease,
  type ClaimedTrigger,
  type OutboxStore,
  type Trigger,
  type TriggerEventSink,
  type TriggerOutcome,
} from './outbox.js';
import {
  decide,
  describe,
  parseRetryAfter,
  type AttemptResult,
  type RetryPolicy,
} from './retry-policy.js';
import { basicCall, UndeliverableCall, type ManagerCall } from './manager-call.js';

export interface DispatcherLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the dispatcher needs from the manager client (ManagerClient, or a fake). */
export interface TriggerSender {
  send(call: ManagerCall, signal?: AbortSignal): Promise<AttemptResult>;
}

export interface DispatcherOptions extends RetryPolicy {
  outbox: OutboxStore;
  sender: TriggerSender;
  events: TriggerEventSink;
  logger: DispatcherLogger;
  /** Deliveries in flight at once. */
  concurrency: number;
  /** Must comfortably exceed timeoutMs (see validateTriggerTiming). */
  leaseMs: number;
  /** The manager client's per-call timeout; only used to validate the lease. */
  timeoutMs: number;
  pollIntervalMs: number;
  retentionMs: number;
  /**
   * Take hand-overs from registrations (the default). False: reserveHandOver() never grants one,
   * so every trigger goes through the claim loop (--trigger-hand-over off, the simple path).
   */
  handOver?: boolean;
  /** How often finished triggers are pruned (default 10 minutes). */
  pruneIntervalMs?: number;
  /**
   * The call for a trigger (manager-call.ts callBuilder: the device looked up when the form needs
   * it). Default: from the trigger alone. A rejection counts as a failed attempt (retried), but
   * UndeliverableCall fails the trigger at once.
   */
  buildCall?: (t: Trigger) => Promise<ManagerCall>;
  /** Every call made, with its duration in seconds (the metrics' call duration histogram). */
  onCall?: (seconds: number, result: AttemptResult) => void;
  /** How often the pending gauge is re-read from the outbox (default 5 seconds). */
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
  /** Pending triggers in the outbox (all processes), as last read. */
  pending: number;
  /** Deliveries in flight in this process now. */
  inFlight: number;
  /** Finished triggers deleted by retention so far. */
  pruned: number;
  /** The manager looks down (circuit open): one probe call at a time until one gets through. */
  managerDown: boolean;
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
/** Consecutive manager-wide failures (see isManagerWideFailure) that open the circuit. */
export const BREAKER_THRESHOLD = 5;
/** Longest pause between two probe calls while the manager is down (and at most max-backoff). */
export const PROBE_MAX_MS = 10_000;
const DEFAULT_GAUGE_INTERVAL = 5_000;

/**
 * A failure that says the manager as a whole is unwell, not that this one trigger is wrong: no
 * connection, a timeout, any 5xx, or 429 (it asks every caller to slow down). Retrying each
 * trigger on its own against such a manager only multiplies the calls.
 */
export function isManagerWideFailure(result: AttemptResult): boolean {
  return result.kind !== 'response' || result.status >= 500 || result.status === 429;
}

/** The pause a 429 or 503 asks for with Retry-After, in ms, if it asks for one. */
function askedPause(result: AttemptResult, now: number): number | undefined {
  if (result.kind !== 'response' || (result.status !== 429 && result.status !== 503)) return;
  return parseRetryAfter(result.retryAfter, now);
}

export class Dispatcher {
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly policy: RetryPolicy;
  private readonly inFlight = new Set<Promise<void>>();
  /** Outcomes of handed-over deliveries still being written (stop() waits for them). */
  private readonly recording = new Set<Promise<void>>();
  /** Hand-overs promised to registrations whose transaction has not committed yet. */
  private reserved = 0;
  /** Handed-over triggers waiting for a slot. */
  private handedOver: ClaimedTrigger[] = [];
  /**
   * The last loop pass found no unleased pending trigger and nothing woke it since: finished
   * hand-overs need not wake it (see the top of this file).
   */
  private quiet = false;
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
  private pruning: Promise<void> | undefined;
  private consecutiveDown = 0;
  private managerDown = false;
  private probeDelay = 0;
  private nextProbeAt = 0;
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
    this.quiet = false;
    this.wakeRequested = true;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /**
   * A place for a hand-over: the lease to give the registration's new trigger, or undefined
   * (stopped, the manager looks down, or `concurrency` hand-overs already wait or are promised).
   * Once the registration's write has ended, endReservation(), then handOver() if the outbox
   * leased the trigger.
   */
  reserveHandOver(): number | undefined {
    if (this.opts.handOver === false) return undefined;
    if (!this.running || this.stopping || this.managerDown) return undefined;
    if (this.reserved + this.handedOver.length >= this.opts.concurrency) return undefined;
    this.reserved++;
    return this.opts.leaseMs;
  }

  endReservation(): void {
    this.reserved = Math.max(0, this.reserved - 1);
  }

  /** Delivers a trigger the outbox leased to this dispatcher with its registration. */
  handOver(t: ClaimedTrigger): void {
    this.handedOver.push(t);
    this.startHandedOver();
  }

  private startHandedOver(): void {
    while (this.handedOver.length > 0 && this.inFlight.size < this.opts.concurrency) {
      this.track(this.deliver(this.handedOver.shift()!, true), true);
    }
  }

  stats(): DispatcherStats {
    return {
      ...this.counters,
      pending: this.pending,
      inFlight: this.inFlight.size,
      managerDown: this.managerDown,
    };
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
    await this.pruning;
    // Handed-over triggers still waiting for a slot go out in the grace too, or come back
    // released (aborted: their calls end at once) like the calls in flight.
    const settled = async () => {
      while (this.inFlight.size > 0 || this.handedOver.length > 0) {
        this.startHandedOver();
        await Promise.all(this.inFlight);
      }
    };
    if (this.inFlight.size > 0 || this.handedOver.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
      await Promise.race([settled(), graceOver]);
      clearTimeout(timer);
      this.abort.abort();
      await settled();
    }
    await Promise.all(this.recording);
    this.running = false;
  }

  private async run(): Promise<void> {
    const { outbox, logger, concurrency, leaseMs, pollIntervalMs } = this.opts;
    while (!this.stopping) {
      this.wakeRequested = false;
      const limit = this.claimLimit(concurrency - this.inFlight.size);
      let claimNow = this.now();
      let claimed = 0;
      let delay = pollIntervalMs;
      try {
        if (limit > 0) {
          claimNow = this.now();
          const batch = await outbox.claim(claimNow, limit, leaseMs);
          claimed = batch.length;
          for (const t of batch) this.track(this.deliver(t));
        }
        await this.housekeeping();
        if (claimed > 0 && claimed === limit && !this.managerDown) continue; // more may be due
        if (this.managerDown && this.inFlight.size > 0) {
          // a probe (or a call from before the circuit opened) is out; its end wakes us
        } else if (this.managerDown && limit === 0) {
          delay = Math.min(pollIntervalMs, Math.max(1, this.nextProbeAt - this.now()));
        } else if (limit > 0) {
          const next = await outbox.nextDue();
          // Due at or before the claim yet not claimed: in flight or queued behind an in-flight
          // trigger of the same device; a finished delivery (or the poll interval) wakes us.
          if (next !== undefined && next > claimNow)
            delay = Math.min(pollIntervalMs, Math.max(0, next - this.now()));
          if (claimed === 0 && next === undefined) {
            const waiting = await outbox.hasUnleased();
            // Unless a wake() came meanwhile (it may be for a trigger committed since the read);
            // the cast: wake() may have set it during the await.
            if (!waiting && !(this.wakeRequested as boolean)) this.quiet = true;
          }
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

  /**
   * How many triggers to claim with `free` slots. While the manager is down (circuit open) only
   * one probe call at a time, once its probe time has come; the other triggers stay due and
   * unattempted, so they go out as soon as a probe gets through.
   */
  private claimLimit(free: number): number {
    free -= this.handedOver.length; // they go first
    if (!this.managerDown) return Math.max(0, free);
    return this.inFlight.size === 0 && this.now() >= this.nextProbeAt ? 1 : 0;
  }

  /**
   * Circuit breaker on manager-wide failures (see isManagerWideFailure). `probe`: the call was
   * started while the circuit was open; only a failed probe lengthens the pause, not the calls
   * that were already out when it opened.
   */
  private observe(result: AttemptResult, probe: boolean): void {
    const { logger, initialBackoffMs, maxBackoffMs } = this.opts;
    if (!isManagerWideFailure(result)) {
      this.consecutiveDown = 0;
      if (this.managerDown) {
        this.managerDown = false;
        logger.info({}, 'service manager reachable again: trigger deliveries resumed');
        this.wake();
      }
      return;
    }
    this.consecutiveDown++;
    const cap = Math.min(maxBackoffMs, PROBE_MAX_MS);
    if (this.managerDown) {
      if (!probe) return;
      this.probeDelay = Math.min(cap, this.probeDelay * 2);
    } else if (this.consecutiveDown >= BREAKER_THRESHOLD) {
      this.managerDown = true;
      this.probeDelay = Math.min(cap, initialBackoffMs);
      logger.warn(
        {
          error: describe(result),
          consecutiveFailures: this.consecutiveDown,
          maxProbeIntervalMs: cap,
        },
        'service manager unreachable or failing: trigger deliveries paused, probing with one call at a time',
      );
    } else {
      return;
    }
    const now = this.now();
    // The manager's own Retry-After wins over our pause, up to --trigger-max-backoff.
    const asked = askedPause(result, now);
    const pause = Math.max(this.probeDelay, Math.min(asked ?? 0, maxBackoffMs));
    this.nextProbeAt = now + pause;
  }

  /** A claimed delivery's end always wakes the loop; a hand-over's only if it is not quiet. */
  private track(p: Promise<void>, handedOver = false): void {
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      this.startHandedOver();
      if (!handedOver || !this.quiet) this.wake();
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
      this.pending = await this.opts.outbox.countPending();
    }
    if (now >= this.nextPruneAt && !this.pruning) {
      this.nextPruneAt = now + (this.opts.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL);
      // In the background: deliveries go on while a large table is pruned window by window.
      this.pruning = this.prune(now - this.opts.retentionMs).finally(() => {
        this.pruning = undefined;
      });
    }
  }

  private async prune(before: number): Promise<void> {
    try {
      const pruned = await this.opts.outbox.prune(before);
      this.counters.pruned += pruned;
      if (pruned > 0) this.opts.logger.info({ pruned }, 'pruned finished triggers');
    } catch (e) {
      this.opts.logger.error({ err: e }, 'pruning finished triggers failed; will try again');
    }
  }

  /**
   * One attempt of a claimed or handed-over trigger; never rejects. A hand-over's 2xx is
   * recorded lazily, after its slot is free; any other outcome before (a retry must be
   * scheduled before the loop looks for the next due trigger).
   */
  private async deliver(t: ClaimedTrigger, handedOver = false): Promise<void> {
    const outcome = await this.attempt(t);
    if (handedOver && outcome.kind === 'delivered') {
      const recording = this.record(t, outcome, true);
      this.recording.add(recording);
      // A newer trigger of the device waits for this outcome: the claim that the freed slot
      // wakes the loop for is queued after it, so it runs in the same batch, after it.
      void recording.finally(() => this.recording.delete(recording));
      return;
    }
    if (handedOver) this.quiet = false;
    await this.record(t, outcome, false);
  }

  private async attempt(t: Trigger): Promise<TriggerOutcome> {
    const { sender, buildCall, onCall } = this.opts;
    try {
      let call: ManagerCall;
      try {
        call = buildCall ? await buildCall(t) : basicCall(t);
      } catch (e) {
        if (e instanceof UndeliverableCall)
          return { kind: 'failed', at: this.now(), error: e.message };
        const error = `could not read the device for the call: ${e instanceof Error ? e.message : String(e)}`;
        return decide(t, { kind: 'error', error }, this.now(), this.policy, this.random);
      }
      const probe = this.managerDown;
      const started = performance.now();
      const result = await sender.send(call, this.abort.signal);
      onCall?.((performance.now() - started) / 1000, result);
      if (!this.abort.signal.aborted) this.observe(result, probe);
      // A call cut short by stop() is released (due now) for the next start, unless it got an answer.
      return this.abort.signal.aborted && result.kind !== 'response'
        ? {
            kind: 'retry',
            at: this.now(),
            nextAttemptAt: this.now(),
            error: 'interrupted by shutdown',
          }
        : decide(t, result, this.now(), this.policy, this.random);
    } catch (e) {
      // A bug in the client; keep the trigger and retry it rather than lose it.
      return decide(t, { kind: 'error', error: String(e) }, this.now(), this.policy, this.random);
    }
  }

  /** Writes the outcome, then counts, logs and publishes it; never rejects. */
  private async record(t: ClaimedTrigger, outcome: TriggerOutcome, lazy: boolean): Promise<void> {
    const { logger, outbox } = this.opts;
    let recorded: boolean;
    try {
      recorded = await outbox.complete(t, outcome, { lazy });
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
    try {
      this.opts.events.emit({ type: 'trigger', trigger: updated });
    } catch (e) {
      logger.error({ err: e, triggerId: t.id }, 'a trigger event listener failed');
    }
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

/** The trigger as complete() left it in the outbox (its lease ended). */
export function applyOutcome(t: Trigger | ClaimedTrigger, outcome: TriggerOutcome): Trigger {
  return { ...withoutLease(t), ...settle(t, outcome) };
}
