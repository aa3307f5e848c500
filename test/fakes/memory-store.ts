/**
 * An in-memory Store for fast tests: the same contract as SQLite and PostgreSQL
 * (test/storage/memory.test.ts runs test/storage/store-suite.ts on it), with no engine, no
 * group commit and no timers, so tests that drive a dispatcher on an injected clock see every
 * write settled within the promise that made it.
 *
 * Test-only by design: a resolved write is not durable (the Store contract says it is), so a
 * server must never run on it.
 */
import { randomUUID } from 'node:crypto';
import { DeviceNotFoundError, StorageUnavailableError } from '../../src/errors.js';
import {
  settle,
  type ClaimedTrigger,
  type Device,
  type DeviceFields,
  type DeviceQuery,
  type DeviceWithLatestTrigger,
  type HistoryEntry,
  type RegisterOptions,
  type RegisterResult,
  type Registration,
  type Store,
  type Trigger,
  type TriggerCounts,
  type TriggerOutcome,
  type TriggerState,
} from '../../src/storage/store.js';

interface StoredDevice extends Device {
  /** The device's newest trigger, as the engines' devices.last_trigger_id. */
  lastTriggerId: number | null;
}

interface StoredTrigger extends Trigger {
  leaseToken: string | null;
  /** The device's trigger before this one, as the engines' triggers.prev_id. */
  prevId: number | null;
}

/** What a reader gets: a copy without the lease token or the chain link. */
function publicTrigger(t: StoredTrigger): Trigger {
  const { leaseToken: _token, prevId: _prev, ...trigger } = t;
  return trigger;
}

function claimed(t: StoredTrigger): ClaimedTrigger {
  if (t.leaseToken === null) throw new Error(`trigger ${t.id} was returned unleased by a claim`);
  return { ...publicTrigger(t), leaseToken: t.leaseToken };
}

function publicDevice(d: StoredDevice): Device {
  const { lastTriggerId: _last, ...device } = d;
  return device;
}

/** Byte order of the engines' text columns for the ASCII ids and names tests use. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const zeroCounts = (): TriggerCounts => ({ pending: 0, delivered: 0, failed: 0, dead: 0 });

export class MemoryStore implements Store {
  readonly engine = 'fake' as const;
  private readonly devices = new Map<string, StoredDevice>();
  /** Newest first, per device: the engines' history rows (seq descending). */
  private readonly histories = new Map<string, HistoryEntry[]>();
  /** By id; Map iteration is insertion order, which is id order. */
  private readonly triggers = new Map<number, StoredTrigger>();
  private lastTriggerId = 0;
  private closed = false;

  register(reg: Registration, opts: RegisterOptions): Promise<RegisterResult> {
    return this.run(() => {
      const existing = this.devices.get(reg.id);
      const fields = { ip: reg.ip, name: reg.name, userdata: reg.userdata };
      const device: StoredDevice = existing
        ? {
            ...existing,
            ...fields,
            lastSeen: reg.at,
            updatedAt: reg.at,
            registrations: existing.registrations + 1,
            lastSource: reg.source,
          }
        : {
            id: reg.id,
            ...fields,
            firstSeen: reg.at,
            lastSeen: reg.at,
            updatedAt: reg.at,
            registrations: 1,
            lastSource: reg.source,
            lastTriggerId: null,
          };
      this.devices.set(reg.id, device);
      if (opts.historyLimit > 0) {
        const entries = [
          { at: reg.at, ip: reg.ip, source: reg.source },
          ...(this.histories.get(reg.id) ?? []),
        ];
        this.histories.set(reg.id, entries.slice(0, opts.historyLimit));
      }
      const result: RegisterResult = {
        created: existing === undefined,
        device: publicDevice(device),
      };
      if (opts.enqueueTrigger)
        result.trigger = this.enqueueTrigger(device, reg.at, opts.handOverLeaseMs);
      return result;
    });
  }

  /** Coalesces into the device's waiting trigger, or appends one (leased at once on hand-over). */
  private enqueueTrigger(
    device: StoredDevice,
    at: number,
    handOverLeaseMs: number | undefined,
  ): Trigger | ClaimedTrigger {
    const prevId = device.lastTriggerId;
    const pending = this.pendingOf(device.id);
    // The newest pending trigger not held by a live lease; it may be left by a deleted device of
    // the same id, and then becomes this device's first.
    const waiting = pending.filter((t) => t.leaseUntil === null || t.leaseUntil < at).at(-1);
    let trigger: StoredTrigger;
    let lease = false;
    if (waiting) {
      Object.assign(waiting, {
        ip: device.ip,
        key: randomUUID(),
        attempts: 0,
        createdAt: at,
        nextAttemptAt: at,
        lastError: null,
        leaseUntil: null,
        leaseToken: null,
        updatedAt: at,
        prevId: waiting.id === prevId ? waiting.prevId : prevId,
      });
      trigger = waiting;
    } else {
      // Hand-over only when nothing of the device is pending (per-device order).
      lease = handOverLeaseMs !== undefined && pending.length === 0;
      trigger = {
        id: ++this.lastTriggerId,
        deviceId: device.id,
        ip: device.ip,
        key: randomUUID(),
        state: 'pending',
        attempts: lease ? 1 : 0,
        createdAt: at,
        nextAttemptAt: at,
        leaseUntil: lease && handOverLeaseMs !== undefined ? at + handOverLeaseMs : null,
        leaseToken: lease ? randomUUID() : null,
        lastError: null,
        deliveredAt: null,
        updatedAt: at,
        prevId,
      };
      this.triggers.set(trigger.id, trigger);
    }
    device.lastTriggerId = trigger.id;
    return lease ? claimed(trigger) : publicTrigger(trigger);
  }

  /** Pending triggers of a device id, oldest first. */
  private pendingOf(deviceId: string): StoredTrigger[] {
    return [...this.triggers.values()].filter(
      (t) => t.deviceId === deviceId && t.state === 'pending',
    );
  }

  /** Pending and no older pending trigger of its device ahead of it (per-device order). */
  private isFirstOfDevice(t: StoredTrigger): boolean {
    return this.pendingOf(t.deviceId)[0] === t;
  }

  get(id: string): Promise<Device> {
    return this.run(() => publicDevice(this.device(id)));
  }

  edit(id: string, fields: DeviceFields, at: number): Promise<Device> {
    return this.run(() => {
      const device = this.device(id);
      Object.assign(device, { ip: fields.ip, name: fields.name, userdata: fields.userdata });
      device.updatedAt = at;
      return publicDevice(device);
    });
  }

  delete(id: string): Promise<Device> {
    return this.run(() => {
      const device = this.device(id);
      // Its triggers stay (until retention), but are no longer any device's.
      this.devices.delete(id);
      this.histories.delete(id);
      return publicDevice(device);
    });
  }

  listIds(after: string | undefined, limit: number): Promise<string[]> {
    return this.run(() =>
      [...this.devices.keys()]
        .filter((id) => after === undefined || id > after)
        .sort(compareText)
        .slice(0, limit),
    );
  }

  queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    return this.run(() => {
      const search = q.search?.toLowerCase();
      const matches = [...this.devices.values()].filter(
        (d) =>
          (!search ||
            d.id.toLowerCase().includes(search) ||
            d.name.toLowerCase().includes(search) ||
            d.ip.toLowerCase().includes(search)) &&
          (!q.triggerState || this.latest(d)?.state === q.triggerState),
      );
      const key = q.sort ?? 'id';
      const direction = q.order === 'desc' ? -1 : 1;
      matches.sort((a, b) => {
        const x = a[key];
        const y = b[key];
        const byKey =
          typeof x === 'number' && typeof y === 'number'
            ? x - y
            : compareText(String(x), String(y));
        return direction * (byKey || compareText(a.id, b.id));
      });
      return {
        total: matches.length,
        items: matches.slice(q.offset, q.offset + q.limit).map((d) => {
          const latest = this.latest(d);
          return { device: publicDevice(d), latestTrigger: latest && publicTrigger(latest) };
        }),
      };
    });
  }

  countDevices(): Promise<number> {
    return this.run(() => this.devices.size);
  }

  countSeenSince(since: number): Promise<number> {
    return this.run(() => [...this.devices.values()].filter((d) => d.lastSeen >= since).length);
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.run(() => (this.histories.get(id) ?? []).map((h) => ({ ...h })));
  }

  importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'> {
    return this.run(() => {
      const existing = this.devices.get(device.id);
      // A replaced device keeps its triggers, as on both engines.
      this.devices.set(device.id, {
        id: device.id,
        ip: device.ip,
        name: device.name,
        userdata: device.userdata,
        firstSeen: device.firstSeen,
        lastSeen: device.lastSeen,
        updatedAt: device.updatedAt,
        registrations: device.registrations,
        lastSource: device.lastSource,
        lastTriggerId: existing?.lastTriggerId ?? null,
      });
      this.histories.set(
        device.id,
        history.map((h) => ({ at: h.at, ip: h.ip, source: h.source })),
      );
      return existing ? 'replaced' : 'created';
    });
  }

  requeueTrigger(id: string, at: number): Promise<Trigger> {
    return this.run(() => this.enqueueTrigger(this.device(id), at, undefined));
  }

  claimTriggers(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    return this.run(() => {
      const token = randomUUID();
      const due = [...this.triggers.values()]
        .filter(
          (t) =>
            t.state === 'pending' &&
            t.nextAttemptAt <= now &&
            (t.leaseUntil === null || t.leaseUntil < now) &&
            this.isFirstOfDevice(t),
        )
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id)
        .slice(0, limit);
      for (const t of due) {
        t.leaseUntil = now + leaseMs;
        t.leaseToken = token;
        t.attempts += 1;
        t.updatedAt = now;
      }
      return due.map(claimed);
    });
  }

  completeTrigger(trigger: ClaimedTrigger, outcome: TriggerOutcome): Promise<boolean> {
    return this.run(() => {
      const stored = this.triggers.get(trigger.id);
      // Also void: a pruned trigger, or one whose lease a coalescing registration cleared.
      if (stored?.leaseToken !== trigger.leaseToken) return false;
      // The stored due time, as the engines' UPDATE keeps the column unless the outcome sets it.
      Object.assign(stored, settle(stored, outcome), { leaseToken: null });
      return true;
    });
  }

  latestTrigger(deviceId: string): Promise<Trigger | undefined> {
    return this.run(() => {
      const device = this.devices.get(deviceId);
      const t = device && this.latest(device);
      return t && publicTrigger(t);
    });
  }

  recentTriggers(deviceId: string, limit: number): Promise<Trigger[]> {
    return this.run(() => {
      const device = this.devices.get(deviceId);
      const recent: Trigger[] = [];
      // The chain from the newest back; a pruned trigger ends it.
      let t = device && this.latest(device);
      while (t && recent.length < limit) {
        recent.push(publicTrigger(t));
        t = t.prevId === null ? undefined : this.triggers.get(t.prevId);
      }
      return recent;
    });
  }

  listTriggers(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.run(() =>
      [...this.triggers.values()]
        .filter((t) => t.id > (afterId ?? 0) && (state === undefined || t.state === state))
        .slice(0, limit)
        .map(publicTrigger),
    );
  }

  countTriggers(): Promise<TriggerCounts> {
    return this.run(() => {
      const counts = zeroCounts();
      for (const t of this.triggers.values()) counts[t.state] += 1;
      return counts;
    });
  }

  countDevicesByTrigger(): Promise<TriggerCounts> {
    return this.run(() => {
      const counts = zeroCounts();
      for (const d of this.devices.values()) {
        const t = this.latest(d);
        if (t) counts[t.state] += 1;
      }
      return counts;
    });
  }

  pruneTriggers(before: number): Promise<number> {
    return this.run(() => {
      const latestOfDevices = new Set(
        [...this.devices.values()].map((d) => d.lastTriggerId).filter((id) => id !== null),
      );
      let deleted = 0;
      for (const t of [...this.triggers.values()]) {
        if (t.state !== 'pending' && t.updatedAt < before && !latestOfDevices.has(t.id)) {
          this.triggers.delete(t.id);
          deleted += 1;
        }
      }
      return deleted;
    });
  }

  nextTriggerDue(): Promise<number | undefined> {
    return this.run(() => {
      const due = [...this.triggers.values()]
        .filter((t) => t.state === 'pending' && t.leaseUntil === null && this.isFirstOfDevice(t))
        .map((t) => t.nextAttemptAt);
      return due.length > 0 ? Math.min(...due) : undefined;
    });
  }

  hasUnleasedTriggers(): Promise<boolean> {
    return this.run(() =>
      [...this.triggers.values()].some((t) => t.state === 'pending' && t.leaseUntil === null),
    );
  }

  countPendingTriggers(): Promise<number> {
    return this.run(() => [...this.triggers.values()].filter((t) => t.state === 'pending').length);
  }

  ping(): Promise<void> {
    return this.run(() => undefined);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private device(id: string): StoredDevice {
    const device = this.devices.get(id);
    if (!device) throw new DeviceNotFoundError(id);
    return device;
  }

  private latest(device: StoredDevice): StoredTrigger | undefined {
    return device.lastTriggerId === null ? undefined : this.triggers.get(device.lastTriggerId);
  }

  /** Every operation: errors as rejections, refused once closed (as the engines). */
  private async run<T>(fn: () => T): Promise<T> {
    if (this.closed) throw new StorageUnavailableError('storage is closed');
    return fn();
  }
}
