/**
 * The storage contract. Every implementation (SQLite, PostgreSQL, the always-failing fake)
 * passes the same suite in test/storage/store-suite.ts.
 *
 * Times are integers: milliseconds since the Unix epoch, in every engine. The HTTP layer
 * renders them as ISO 8601.
 *
 * Errors: DeviceNotFoundError for an unknown id, StorageUnavailableError when the engine
 * cannot be reached or a write did not commit. A resolved write promise means committed durably.
 */

export interface DeviceFields {
  ip: string;
  name: string;
  userdata: string;
}

export interface Device extends DeviceFields {
  id: string;
  /** First registration (or import) time. */
  firstSeen: number;
  /** Last registration time. */
  lastSeen: number;
  /** Last change of the record by registration or edit. */
  updatedAt: number;
  registrations: number;
  /** Address the last registration came from ('' when unknown). */
  lastSource: string;
}

/** What `GET /ztp/check/{id}` shows of a device. */
export type DeviceRecord = Pick<Device, 'id' | 'ip' | 'name' | 'userdata'>;

export interface Registration extends DeviceFields {
  id: string;
  source: string;
  at: number;
}

export interface RegisterOptions {
  /** Enqueue a manager trigger in the same transaction (false when no manager is configured). */
  enqueueTrigger: boolean;
  /** Registration history entries to keep per device (0 keeps none). */
  historyLimit: number;
  /**
   * Hand-over: lease a newly enqueued trigger to the caller for this long, in the same
   * transaction, when it can be delivered at once (it was inserted, not coalesced, and no other
   * trigger of the device is pending). The returned trigger is then claimed (attempts 1, lease
   * token set) and the caller completes it without a claimTriggers round. Engines may ignore it.
   */
  handOverLeaseMs?: number;
}

export interface CompleteOptions {
  /**
   * The write may wait a few milliseconds for the next group commit instead of committing on
   * its own (engines may ignore it). Nothing depends on its timing but the trigger's state.
   */
  lazy?: boolean;
}

export interface RegisterResult {
  created: boolean;
  device: Device;
  /**
   * The trigger that will carry this registration to the manager, when one was enqueued; a
   * ClaimedTrigger when the store leased it to the caller (RegisterOptions.handOverLeaseMs).
   */
  trigger?: Trigger | ClaimedTrigger;
}

export interface HistoryEntry {
  at: number;
  ip: string;
  source: string;
}

export type TriggerState = 'pending' | 'delivered' | 'failed' | 'dead';
export const TRIGGER_STATES: readonly TriggerState[] = ['pending', 'delivered', 'failed', 'dead'];

export interface Trigger {
  id: number;
  deviceId: string;
  ip: string;
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

export interface Page<T> {
  items: T[];
  /** Cursor for the next page, absent on the last one. */
  next?: string;
}

export interface DeviceQuery {
  /** Case-insensitive substring of id, name or ip. */
  search?: string;
  /** Only devices whose latest trigger is in this state. */
  triggerState?: TriggerState;
  sort?: 'id' | 'lastSeen' | 'ip' | 'name' | 'registrations';
  order?: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** A row of the console's device page: the device and its latest trigger, read in one query. */
export interface DeviceWithLatestTrigger {
  device: Device;
  latestTrigger: Trigger | undefined;
}

export interface TriggerCounts {
  pending: number;
  delivered: number;
  failed: number;
  dead: number;
}

export interface Store {
  readonly engine: 'sqlite' | 'postgres' | 'fake';

  /** Upsert a device from a registration, record history and (optionally) enqueue a trigger, atomically. */
  register(reg: Registration, opts: RegisterOptions): Promise<RegisterResult>;
  get(id: string): Promise<Device>;
  /** Replace ip/name/userdata of an existing device. Never creates. */
  edit(id: string, fields: DeviceFields, at: number): Promise<Device>;
  /** Remove a device and its history; returns what was removed. */
  delete(id: string): Promise<Device>;
  /** Device ids in ascending order, strictly after `after`. */
  listIds(after: string | undefined, limit: number): Promise<string[]>;
  /**
   * Devices for the console, each with its latest trigger (joined, not read row by row):
   * filtered, sorted, offset-paged; `total` counts the filter's matches.
   */
  queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }>;
  countDevices(): Promise<number>;
  /** Number of devices whose last registration is at or after `since`. */
  countSeenSince(since: number): Promise<number>;
  history(id: string): Promise<HistoryEntry[]>;
  /** Insert a device exactly as exported (import); replaces an existing one. */
  importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'>;

  /** Enqueue (or coalesce into the device's waiting trigger) a trigger for the device's current ip. */
  requeueTrigger(id: string, at: number): Promise<Trigger>;
  /**
   * Claim up to `limit` due triggers for `leaseMs`: only pending ones, not leased by a live
   * dispatcher, and only the oldest pending trigger of each device (per-device order).
   */
  claimTriggers(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]>;
  /**
   * Record the outcome of a delivery attempt under the trigger's lease token. Returns false (and
   * changes nothing) when that lease is void: the trigger was meanwhile replaced or re-claimed,
   * or the token is not the one the store gave.
   */
  completeTrigger(
    trigger: ClaimedTrigger,
    outcome: TriggerOutcome,
    opts?: CompleteOptions,
  ): Promise<boolean>;
  latestTrigger(deviceId: string): Promise<Trigger | undefined>;
  recentTriggers(deviceId: string, limit: number): Promise<Trigger[]>;
  listTriggers(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]>;
  /** Trigger rows by state (finished ones count until retention prunes them). */
  countTriggers(): Promise<TriggerCounts>;
  /**
   * Devices by the state of their latest trigger (devices without one are not counted): what
   * "failed" means to an operator, a device whose provisioning call failed, however often it
   * was re-queued.
   */
  countDevicesByTrigger(): Promise<TriggerCounts>;
  /**
   * Delete finished (delivered/failed/dead) triggers last updated before `before`, keeping each
   * device's latest trigger. Returns how many were deleted.
   */
  pruneTriggers(before: number): Promise<number>;
  /**
   * Earliest nextAttemptAt among pending triggers a claim could take (not leased, not behind an
   * older pending trigger of the same device), for the dispatcher's sleep; undefined if none.
   * Leased ones become claimable when their lease expires or their delivery completes; the
   * dispatcher polls for those.
   */
  nextTriggerDue(): Promise<number | undefined>;
  /**
   * Whether any pending trigger is not leased (due, scheduled for a retry, or queued behind an
   * older trigger of its device). When none is, only a new enqueue can give a dispatcher work.
   * Optional: without it the dispatcher assumes there may be.
   */
  hasUnleasedTriggers?(): Promise<boolean>;
  /**
   * Number of pending triggers, cheaper than countTriggers() on a large table (the dispatcher's
   * gauge reads it every few seconds). Optional: countTriggers().pending is used without it.
   */
  countPendingTriggers?(): Promise<number>;

  /**
   * Releases (pending, unleased, due as they were) the leases that a previous incarnation of
   * this server left behind when it died, so that a restart delivers them at once instead of
   * after --trigger-lease. Never touches leases of this process or of other live replicas.
   * Returns how many were released. Optional: engines that do it on open (SQLite) omit it.
   */
  releaseStaleLeases?(): Promise<number>;

  /** Resolves when the engine answers; throws StorageUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
