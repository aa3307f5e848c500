/**
 * The trigger records and the outbox store: triggers waiting for (or done with) their call to
 * the service manager, claimed under an explicit lease token. Imports only types, so that the
 * browser bundle's typecheck may read it (through events/wire.ts).
 */
import type { Step } from '../db/unit-of-work.js';

export type TriggerState = 'pending' | 'delivered' | 'failed' | 'dead';
export const TRIGGER_STATES: readonly TriggerState[] = ['pending', 'delivered', 'failed', 'dead'];

/**
 * What happened to the device, as the manager is told (the json call's `type`): a registration,
 * or a trigger queued by hand. Stored as text, so a later kind (`approved`, with enrollment) is
 * one more member here and no migration.
 *
 * `report` is of its own kind: a progress report forwarded to the manager (--report-forward).
 * It goes through the same outbox, leases and retries, but is never coalesced with a
 * registration's trigger, never the device's newest trigger (what the console and the device
 * API show), and its delivery is not the device's last delivered ip (--trigger-on ip-change).
 */
export type TriggerType = 'registered' | 'retriggered' | 'approved' | 'report';

/** The progress report a `report` trigger forwards; its time is the trigger's createdAt. */
export interface ForwardedReport {
  type: string;
  message: string;
}

/** When a registration queues a trigger (--trigger-on). */
export type TriggerOn = 'every-registration' | 'ip-change';

export interface Trigger {
  id: number;
  deviceId: string;
  ip: string;
  type: TriggerType;
  /**
   * The device's ip before the registration that queued this trigger (null for a device that
   * registration created). Coalescing keeps the earliest: what the manager last knew.
   */
  previousIp: string | null;
  /** The report forwarded (type `report`); null for every other type. */
  report: ForwardedReport | null;
  /** Sent as Idempotency-Key; stable across retries of one trigger. */
  key: string;
  state: TriggerState;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  /** Set while a dispatcher holds the trigger; another may claim it after this time. */
  leaseUntil: number | null;
  lastError: string | null;
  deliveredAt: number | null;
  updatedAt: number;
}

/**
 * A trigger leased to one dispatcher (by claimTriggers, or by a registration's hand-over). The
 * token is the lease: completeTrigger records an outcome only while the stored lease still has
 * it, so a copy of this object completes as well as the original, and nothing else can.
 */
export interface ClaimedTrigger extends Trigger {
  leaseToken: string;
}

export function isClaimed(t: Trigger | ClaimedTrigger): t is ClaimedTrigger {
  return 'leaseToken' in t && typeof t.leaseToken === 'string';
}

/** The trigger as anyone but its lease holder may see it (events, the API). */
export function withoutLease(t: Trigger | ClaimedTrigger): Trigger {
  if (!isClaimed(t)) return t;
  const { leaseToken: _token, ...trigger } = t;
  return trigger;
}

/** What a dispatcher reports after one delivery attempt. */
export type TriggerOutcome =
  | { kind: 'delivered'; at: number }
  | { kind: 'retry'; at: number; nextAttemptAt: number; error: string }
  | { kind: 'failed'; at: number; error: string }
  | { kind: 'dead'; at: number; error: string };

/** The members of a trigger that recording an outcome sets (and what the lease leaves). */
export type SettledTrigger = Pick<
  Trigger,
  'state' | 'nextAttemptAt' | 'leaseUntil' | 'lastError' | 'deliveredAt' | 'updatedAt'
>;

/**
 * The one rule from a delivery outcome to the trigger's stored state: every engine writes it and
 * the dispatcher publishes it. A retry stays pending with its new due time; anything else keeps
 * the due time it had; the lease ends either way.
 */
export function settle(t: Pick<Trigger, 'nextAttemptAt'>, outcome: TriggerOutcome): SettledTrigger {
  return {
    state: outcome.kind === 'retry' ? 'pending' : outcome.kind,
    nextAttemptAt: outcome.kind === 'retry' ? outcome.nextAttemptAt : t.nextAttemptAt,
    leaseUntil: null,
    lastError: outcome.kind === 'delivered' ? null : outcome.error,
    deliveredAt: outcome.kind === 'delivered' ? outcome.at : null,
    updatedAt: outcome.at,
  };
}

export interface TriggerCounts {
  pending: number;
  delivered: number;
  failed: number;
  dead: number;
}

export interface EnqueueOptions {
  /**
   * Lease the new trigger to the caller for this long (hand-over, see enqueueStep); engines may
   * ignore it.
   */
  handOverLeaseMs?: number | undefined;
  /**
   * --trigger-on ip-change: queue nothing when the device existed before this registration, its
   * ip equals the one last delivered for it, and none of its triggers is pending (a pending one
   * is coalesced as always, so that it carries the current ip).
   */
  onIpChangeOnly?: boolean | undefined;
}

export interface CompleteOptions {
  /**
   * The write may wait a few milliseconds for the next group commit instead of committing on
   * its own (engines may ignore it). Nothing depends on its timing but the trigger's state.
   */
  lazy?: boolean;
}

/** One implementation per engine: outbox-sqlite.ts, outbox-postgres.ts (and a fake in test/fakes/). */
export interface OutboxStore {
  /**
   * A registration's trigger (type `registered`), as a step of its transaction placed after the
   * device's upsert (db/unit-of-work.ts): coalesced into the device's waiting trigger, or a new
   * one for `ip`, made the device's newest. Its previousIp is the device row's previous_ip, as
   * the upsert left it; a coalesced trigger keeps its own.
   *
   * Hand-over: with `opts.handOverLeaseMs`, a newly inserted trigger is leased to the caller for
   * that long in the same step when it can be delivered at once (it was inserted, not coalesced,
   * and no other trigger of the device is pending); the step then returns it claimed (attempts 1,
   * lease token set) and the caller completes it without a claim.
   *
   * Undefined when `opts.onIpChangeOnly` suppressed it.
   */
  enqueueStep(
    deviceId: string,
    ip: string,
    at: number,
    opts?: EnqueueOptions,
  ): Step<Trigger | ClaimedTrigger | undefined>;
  /**
   * A progress report to forward (type `report`), as a step of the report's transaction placed
   * after its report step (which checks the device): a trigger of its own for the device's
   * current ip, never coalesced and never made the device's newest. Not leased (no hand-over):
   * the caller wakes the dispatcher after the commit. Undefined when the device does not exist.
   */
  forwardStep(deviceId: string, report: ForwardedReport, at: number): Step<Trigger | undefined>;
  /**
   * A trigger (type `retriggered`) for the device's current ip, as a step of the caller's
   * transaction (DeviceNotFoundError for an unknown id).
   */
  requeueStep(deviceId: string, at: number): Step<Trigger>;
  /**
   * Claim up to `limit` due triggers for `leaseMs`: only pending ones, not leased by a live
   * dispatcher, and only the oldest pending trigger of each device (per-device order).
   */
  claim(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]>;
  /**
   * Record the outcome of a delivery attempt under the trigger's lease token; a delivery also
   * records the trigger's ip as the device's last delivered one (unless a newer trigger's is
   * there already), in the same transaction. Returns false (and changes nothing) when that lease
   * is void: the trigger was meanwhile replaced or re-claimed,
   * or the token is not the one the store gave.
   */
  complete(
    trigger: ClaimedTrigger,
    outcome: TriggerOutcome,
    opts?: CompleteOptions,
  ): Promise<boolean>;
  /**
   * Delete finished (delivered/failed/dead) triggers last updated before `before`, keeping each
   * device's latest trigger. Returns how many were deleted.
   */
  prune(before: number): Promise<number>;
  /**
   * Earliest nextAttemptAt among pending triggers a claim could take (not leased, not behind an
   * older pending trigger of the same device), for the dispatcher's sleep; undefined if none.
   * Leased ones become claimable when their lease expires or their delivery completes; the
   * dispatcher polls for those.
   */
  nextDue(): Promise<number | undefined>;
  /**
   * Whether any pending trigger is not leased (due, scheduled for a retry, or queued behind an
   * older trigger of its device). When none is, only a new enqueue can give a dispatcher work.
   */
  hasUnleased(): Promise<boolean>;
  /** The ip last delivered to the manager for a device id (kept across retention), if any. */
  lastDeliveredIp(deviceId: string): Promise<string | undefined>;
  /** Number of pending triggers (the dispatcher's gauge reads it every few seconds). */
  countPending(): Promise<number>;
  /**
   * Releases (pending, unleased, due as they were) the leases that a previous incarnation of
   * this server left behind when it died, so that a restart delivers them at once instead of
   * after --trigger-lease. Never touches leases of this process or of other live replicas.
   * Returns how many were released (SQLite does it on open and returns 0 here).
   */
  releaseStaleLeases(): Promise<number>;
}

/** What the trigger features publish after a commit (events/bus.ts carries it). */
export interface TriggerEvent {
  type: 'trigger';
  trigger: Trigger;
}

/** Where they publish it (the app's EventBus fits). */
export interface TriggerEventSink {
  emit(event: TriggerEvent): void;
}
