/**
 * In-memory fakes of every store interface, for fast tests: the same contracts as SQLite and
 * PostgreSQL (test/storage/memory.test.ts runs the contract suite on them), with no engine, no
 * group commit and no timers, so tests that drive a dispatcher on an injected clock see every
 * write settled within the promise that made it. One class per interface, all over one set of
 * tables (MemoryTables), as the engines' stores share one database.
 *
 * Test-only by design: a resolved write is not durable (the contracts say it is), so a server
 * must never run on them.
 */
import { randomUUID } from 'node:crypto';
import {
  stepFor,
  type Database,
  type MemoryStep,
  type Step,
  type StepResults,
} from '../../src/db/unit-of-work.js';
import type {
  DeviceQuery,
  DeviceReadModel,
  DeviceWithLatestTrigger,
} from '../../src/devices/read-model.js';
import type { Stores } from '../../src/devices/service.js';
import { ALIASES_PER_DEVICE_MAX, tooManyAliases } from '../../src/devices/identity.js';
import type {
  Alias,
  Change,
  Device,
  DeviceRecord,
  DevicePatch,
  DeviceStore,
  HistoryEntry,
  RegisteredDevice,
  Registration,
} from '../../src/devices/store.js';
import {
  AliasConflictError,
  AliasNotFoundError,
  DeviceNotFoundError,
  StorageUnavailableError,
} from '../../src/errors.js';
import {
  settle,
  type ClaimedTrigger,
  type EnqueueOptions,
  type ForwardedReport,
  type OutboxStore,
  type Trigger,
  type TriggerCounts,
  type TriggerOutcome,
  type TriggerState,
  type TriggerType,
} from '../../src/triggers/outbox.js';
import type { TriggerReadModel } from '../../src/triggers/read-model.js';
import type { NewReport, Report, ReportStore } from '../../src/reports/store.js';

interface StoredDevice extends Device {
  /** The device's newest trigger, as the engines' devices.last_trigger_id. */
  lastTriggerId: number | null;
  /** The ip before its latest registration, as the engines' devices.previous_ip. */
  previousIp: string | null;
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
  const { lastTriggerId: _last, previousIp: _previous, ...device } = d;
  return device;
}

/** Byte order of the engines' text columns for the ASCII ids and names tests use. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const zeroCounts = (): TriggerCounts => ({ pending: 0, delivered: 0, failed: 0, dead: 0 });

/** The rows of every memory store: the engines' tables. */
export class MemoryTables {
  readonly devices = new Map<string, StoredDevice>();
  /** Newest first, per device: the engines' history rows (seq descending). */
  readonly histories = new Map<string, HistoryEntry[]>();
  /** By id; Map iteration is insertion order, which is id order. */
  readonly triggers = new Map<number, StoredTrigger>();
  /** Alias value → its type and holder: the engines' aliases table. */
  readonly aliases = new Map<string, { type: Alias['type']; deviceId: string }>();
  /** The engines' trigger_deliveries: the last delivered ip by device id. */
  readonly deliveries = new Map<string, { ip: string; triggerId: number }>();
  /** The engines' reports: by device id, oldest first. */
  readonly reports = new Map<string, Report[]>();
  lastTriggerId = 0;
  closed = false;
  /** Other fakes' rows on these tables (enrollment, audit): each snapshots itself for a unit. */
  private readonly others: (() => () => void)[] = [];

  /** A fake with rows of its own registers how to snapshot them, so a failed unit undoes them. */
  onSnapshot(snapshot: () => () => void): void {
    this.others.push(snapshot);
  }

  /** Copies every table; the function returned puts them back (a unit that failed midway). */
  snapshot(): () => void {
    const own = [
      mapSnapshot(this.devices),
      mapSnapshot(this.histories),
      mapSnapshot(this.triggers),
      mapSnapshot(this.aliases),
      mapSnapshot(this.deliveries),
      mapSnapshot(this.reports),
    ];
    const lastTriggerId = this.lastTriggerId;
    const restores = [...own, ...this.others.map((s) => s())];
    return () => {
      for (const restore of restores) restore();
      this.lastTriggerId = lastTriggerId;
    };
  }

  /** The device with this primary id, else the holder of this alias. */
  resolve(idOrAlias: string): string {
    if (this.devices.has(idOrAlias)) return idOrAlias;
    return this.aliases.get(idOrAlias)?.deviceId ?? idOrAlias;
  }

  aliasesOf(id: string): Alias[] {
    return [...this.aliases.entries()]
      .filter(([, a]) => a.deviceId === id)
      .map(([value, a]) => ({ type: a.type, value }))
      .sort((a, b) => compareText(a.value, b.value));
  }

  /** As the engines' checks: conflicts and the limit, before anything is written. */
  checkAliases(id: string, aliases: readonly Alias[], limit: number): Alias[] {
    const claimed = aliases.filter((a) => a.value !== id);
    let added = 0;
    for (const a of claimed) {
      const holder =
        this.aliases.get(a.value)?.deviceId ?? (this.devices.has(a.value) ? a.value : undefined);
      if (holder !== undefined && holder !== id) throw new AliasConflictError(a.value, holder);
      if (holder === undefined) added++;
    }
    const held = this.aliasesOf(id).length;
    if (held + added > limit) throw tooManyAliases(held + added);
    return claimed;
  }

  insertAliases(id: string, aliases: readonly Alias[]): void {
    for (const a of aliases) this.aliases.set(a.value, { type: a.type, deviceId: id });
  }

  dropAliases(id: string): void {
    for (const [value, a] of this.aliases) if (a.deviceId === id) this.aliases.delete(value);
  }

  device(id: string): StoredDevice {
    const device = this.devices.get(id);
    if (!device) throw new DeviceNotFoundError(id);
    return device;
  }

  latest(device: StoredDevice): StoredTrigger | undefined {
    return device.lastTriggerId === null ? undefined : this.triggers.get(device.lastTriggerId);
  }

  /** Pending triggers of a device id, oldest first. */
  pendingOf(deviceId: string): StoredTrigger[] {
    return [...this.triggers.values()].filter(
      (t) => t.deviceId === deviceId && t.state === 'pending',
    );
  }

  /** Every operation: errors as rejections, refused once closed (as the engines). */
  async run<T>(fn: () => T): Promise<T> {
    if (this.closed) throw new StorageUnavailableError('storage is closed');
    return fn();
  }

  step<T>(run: () => T): MemoryStep<T> {
    return { engine: 'memory', run };
  }
}

/**
 * Copies a table's rows; the function returned puts them back into the same Map (other fakes
 * hold it), as a rolled-back transaction leaves the engines' tables.
 */
export function mapSnapshot<K, V>(map: Map<K, V>): () => void {
  const rows = structuredClone(map);
  return () => {
    map.clear();
    for (const [k, v] of rows) map.set(k, v);
  };
}

/**
 * The Transactor: steps run in order at once; a step that throws puts every table back as it was
 * before the unit (the engines roll the unit's savepoint back), and the unit rejects.
 */
export class MemoryDatabase implements Database {
  readonly engine = 'memory' as const;

  constructor(private readonly tables: MemoryTables) {}

  commit<const S extends readonly Step<unknown>[]>(
    _key: string,
    steps: S,
  ): Promise<StepResults<S>> {
    return this.tables.run(() => {
      const rollBack = this.tables.snapshot();
      try {
        return steps.map((s) => stepFor('memory', s).run()) as StepResults<S>;
      } catch (e) {
        rollBack();
        throw e;
      }
    });
  }

  ping(): Promise<void> {
    return this.tables.run(() => undefined);
  }

  close(): Promise<void> {
    this.tables.closed = true;
    return Promise.resolve();
  }
}

export class MemoryDeviceStore implements DeviceStore {
  constructor(private readonly t: MemoryTables) {}

  registerStep(reg: Registration, historyLimit: number): MemoryStep<RegisteredDevice> {
    return this.t.step(() => {
      const id = this.t.aliases.get(reg.id)?.deviceId ?? reg.id;
      const claimed = this.t.checkAliases(id, reg.aliases ?? [], ALIASES_PER_DEVICE_MAX);
      const existing = this.t.devices.get(id);
      const device: StoredDevice = existing
        ? {
            ...existing,
            ip: reg.ip,
            name: reg.name === undefined || existing.pinned.name ? existing.name : reg.name,
            userdata:
              reg.userdata === undefined || existing.pinned.userdata
                ? existing.userdata
                : reg.userdata,
            reported: {
              name: reg.name ?? existing.reported.name,
              userdata: reg.userdata ?? existing.reported.userdata,
            },
            previousIp: existing.ip,
            lastSeen: reg.at,
            updatedAt: reg.at,
            registrations: existing.registrations + 1,
            lastSource: reg.source,
          }
        : {
            id,
            ip: reg.ip,
            name: reg.name ?? '',
            userdata: reg.userdata ?? '',
            firstSeen: reg.at,
            lastSeen: reg.at,
            updatedAt: reg.at,
            registrations: 1,
            lastSource: reg.source,
            pinned: { name: false, userdata: false },
            reported: { name: reg.name ?? null, userdata: reg.userdata ?? null },
            lastTriggerId: null,
            previousIp: null,
          };
      this.t.devices.set(id, device);
      this.t.insertAliases(id, claimed);
      if (historyLimit > 0) {
        const entries = [
          { at: reg.at, ip: reg.ip, source: reg.source },
          ...(this.t.histories.get(id) ?? []),
        ];
        this.t.histories.set(id, entries.slice(0, historyLimit));
      }
      return { created: existing === undefined, device: publicDevice(device) };
    });
  }

  get(idOrAlias: string): Promise<Device> {
    return this.t.run(() => publicDevice(this.t.device(this.t.resolve(idOrAlias))));
  }

  record(idOrAlias: string): Promise<DeviceRecord> {
    return this.t.run(() => {
      const { id, ip, name, userdata } = this.t.device(this.t.resolve(idOrAlias));
      return { id, ip, name, userdata };
    });
  }

  resolveId(idOrAlias: string): Promise<string> {
    return this.t.run(() => this.t.aliases.get(idOrAlias)?.deviceId ?? idOrAlias);
  }

  editStep(id: string, patch: DevicePatch, at: number): MemoryStep<Change<Device>> {
    return this.t.step(() => {
      const device = this.t.device(id);
      const before = publicDevice(device);
      if (patch.ip !== undefined) device.ip = patch.ip;
      if (patch.name !== undefined) device.name = patch.name;
      if (patch.userdata !== undefined) device.userdata = patch.userdata;
      device.pinned = { ...device.pinned, ...patch.pinned };
      device.updatedAt = at;
      return { before, after: publicDevice(device) };
    });
  }

  deleteStep(id: string): MemoryStep<Device> {
    return this.t.step(() => {
      const device = this.t.device(id);
      // Its triggers stay (until retention), but are no longer any device's.
      this.t.devices.delete(id);
      this.t.histories.delete(id);
      this.t.dropAliases(id);
      return publicDevice(device);
    });
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.t.run(() => (this.t.histories.get(id) ?? []).map((h) => ({ ...h })));
  }

  aliases(id: string): Promise<Alias[]> {
    return this.t.run(() => this.t.aliasesOf(id));
  }

  addAliasesStep(
    id: string,
    aliases: readonly Alias[],
    limit: number,
  ): MemoryStep<Change<Alias[]>> {
    return this.t.step(() => {
      this.t.device(id);
      const before = this.t.aliasesOf(id);
      this.t.insertAliases(id, this.t.checkAliases(id, aliases, limit));
      return { before, after: this.t.aliasesOf(id) };
    });
  }

  removeAliasStep(id: string, alias: Alias): MemoryStep<Change<Alias[]>> {
    return this.t.step(() => {
      this.t.device(id);
      const before = this.t.aliasesOf(id);
      const held = this.t.aliases.get(alias.value);
      if (held?.deviceId !== id || held.type !== alias.type)
        throw new AliasNotFoundError(id, alias.type, alias.value);
      this.t.aliases.delete(alias.value);
      return { before, after: this.t.aliasesOf(id) };
    });
  }

  importDeviceStep(
    device: Device,
    history: HistoryEntry[],
    aliases: readonly Alias[] = [],
  ): MemoryStep<{ before: Device | undefined; after: Device }> {
    return this.t.step(() => {
      const holder = this.t.aliases.get(device.id)?.deviceId;
      if (holder !== undefined && holder !== device.id)
        throw new AliasConflictError(device.id, holder);
      const claimed = this.t.checkAliases(device.id, aliases, Number.MAX_SAFE_INTEGER);
      const existing = this.t.devices.get(device.id);
      const stored: StoredDevice = {
        id: device.id,
        ip: device.ip,
        name: device.name,
        userdata: device.userdata,
        firstSeen: device.firstSeen,
        lastSeen: device.lastSeen,
        updatedAt: device.updatedAt,
        registrations: device.registrations,
        lastSource: device.lastSource,
        pinned: { ...device.pinned },
        reported: { ...device.reported },
        // A replaced device keeps its triggers, as on both engines.
        lastTriggerId: existing?.lastTriggerId ?? null,
        previousIp: existing?.previousIp ?? null,
      };
      this.t.devices.set(device.id, stored);
      this.t.dropAliases(device.id);
      this.t.insertAliases(device.id, claimed);
      this.t.histories.set(
        device.id,
        history.map((h) => ({ at: h.at, ip: h.ip, source: h.source })),
      );
      return { before: existing && publicDevice(existing), after: publicDevice(stored) };
    });
  }
}

export class MemoryDeviceReadModel implements DeviceReadModel {
  constructor(private readonly t: MemoryTables) {}

  listIds(after: string | undefined, limit: number): Promise<string[]> {
    return this.t.run(() =>
      [...this.t.devices.keys()]
        .filter((id) => after === undefined || id > after)
        .sort(compareText)
        .slice(0, limit),
    );
  }

  queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    return this.t.run(() => {
      const search = q.search?.toLowerCase();
      const matches = [...this.t.devices.values()].filter(
        (d) =>
          (!search ||
            d.id.toLowerCase().includes(search) ||
            d.name.toLowerCase().includes(search) ||
            d.ip.toLowerCase().includes(search) ||
            this.t.aliasesOf(d.id).some((a) => a.value.toLowerCase().includes(search))) &&
          (!q.triggerState || this.t.latest(d)?.state === q.triggerState),
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
          const latest = this.t.latest(d);
          return { device: publicDevice(d), latestTrigger: latest && publicTrigger(latest) };
        }),
      };
    });
  }

  countDevices(): Promise<number> {
    return this.t.run(() => this.t.devices.size);
  }

  countSeenSince(since: number): Promise<number> {
    return this.t.run(() => [...this.t.devices.values()].filter((d) => d.lastSeen >= since).length);
  }

  countDevicesByTrigger(): Promise<TriggerCounts> {
    return this.t.run(() => {
      const counts = zeroCounts();
      for (const d of this.t.devices.values()) {
        const t = this.t.latest(d);
        if (t) counts[t.state] += 1;
      }
      return counts;
    });
  }

  bareMacIds(limit: number): Promise<string[]> {
    return this.t.run(() =>
      [...this.t.devices.keys()]
        .filter((id) => /^[0-9a-f]{12}$/i.test(id))
        .sort(compareText)
        .slice(0, limit),
    );
  }
}

export class MemoryOutbox implements OutboxStore {
  constructor(private readonly t: MemoryTables) {}

  enqueueStep(
    deviceId: string,
    _ip: string,
    at: number,
    opts: EnqueueOptions = {},
  ): MemoryStep<Trigger | ClaimedTrigger | undefined> {
    // The device's ip as its registration (the step before) left it.
    return this.t.step(() => {
      const device = this.t.device(deviceId);
      if (
        opts.onIpChangeOnly === true &&
        device.previousIp !== null &&
        this.t.deliveries.get(deviceId)?.ip === device.ip &&
        this.t.pendingOf(deviceId).every((t) => t.type === 'report')
      )
        return undefined;
      return this.enqueue(device, 'registered', at, opts.handOverLeaseMs);
    });
  }

  /** Coalesces into the device's waiting trigger, or appends one (leased at once on hand-over). */
  private enqueue(
    device: StoredDevice,
    type: TriggerType,
    at: number,
    handOverLeaseMs: number | undefined,
  ): Trigger | ClaimedTrigger {
    const prevId = device.lastTriggerId;
    const pending = this.t.pendingOf(device.id);
    // The newest pending trigger not held by a live lease; it may be left by a deleted device of
    // the same id, and then becomes this device's first.
    const waiting = pending
      .filter((t) => t.type !== 'report' && (t.leaseUntil === null || t.leaseUntil < at))
      .at(-1);
    let trigger: StoredTrigger;
    let lease = false;
    if (waiting) {
      Object.assign(waiting, {
        ip: device.ip,
        type,
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
        id: ++this.t.lastTriggerId,
        deviceId: device.id,
        ip: device.ip,
        type,
        previousIp: device.previousIp,
        report: null,
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
      this.t.triggers.set(trigger.id, trigger);
    }
    device.lastTriggerId = trigger.id;
    return lease ? claimed(trigger) : publicTrigger(trigger);
  }

  /** Pending and no older pending trigger of its device ahead of it (per-device order). */
  private isFirstOfDevice(t: StoredTrigger): boolean {
    return this.t.pendingOf(t.deviceId)[0] === t;
  }

  forwardStep(
    deviceId: string,
    report: ForwardedReport,
    at: number,
  ): MemoryStep<Trigger | undefined> {
    return this.t.step(() => {
      const device = this.t.devices.get(deviceId);
      if (!device) return undefined;
      const trigger: StoredTrigger = {
        id: ++this.t.lastTriggerId,
        deviceId,
        ip: device.ip,
        type: 'report',
        previousIp: null,
        report: { ...report },
        key: randomUUID(),
        state: 'pending',
        attempts: 0,
        createdAt: at,
        nextAttemptAt: at,
        leaseUntil: null,
        leaseToken: null,
        lastError: null,
        deliveredAt: null,
        updatedAt: at,
        prevId: null,
      };
      this.t.triggers.set(trigger.id, trigger);
      return publicTrigger(trigger);
    });
  }

  requeueStep(id: string, at: number): MemoryStep<Trigger> {
    return this.t.step(() => this.enqueue(this.t.device(id), 'retriggered', at, undefined));
  }

  claim(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    return this.t.run(() => {
      const token = randomUUID();
      const due = [...this.t.triggers.values()]
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

  complete(trigger: ClaimedTrigger, outcome: TriggerOutcome): Promise<boolean> {
    return this.t.run(() => {
      const stored = this.t.triggers.get(trigger.id);
      // Also void: a pruned trigger, or one whose lease a coalescing registration cleared.
      if (stored?.leaseToken !== trigger.leaseToken) return false;
      // The stored due time, as the engines' UPDATE keeps the column unless the outcome sets it.
      Object.assign(stored, settle(stored, outcome), { leaseToken: null });
      const known = this.t.deliveries.get(stored.deviceId);
      if (
        outcome.kind === 'delivered' &&
        stored.type !== 'report' &&
        (known === undefined || known.triggerId <= stored.id)
      )
        this.t.deliveries.set(stored.deviceId, { ip: stored.ip, triggerId: stored.id });
      return true;
    });
  }

  lastDeliveredIp(deviceId: string): Promise<string | undefined> {
    return this.t.run(() => this.t.deliveries.get(deviceId)?.ip);
  }

  prune(before: number): Promise<number> {
    return this.t.run(() => {
      const latestOfDevices = new Set(
        [...this.t.devices.values()].map((d) => d.lastTriggerId).filter((id) => id !== null),
      );
      let deleted = 0;
      for (const t of [...this.t.triggers.values()]) {
        if (t.state !== 'pending' && t.updatedAt < before && !latestOfDevices.has(t.id)) {
          this.t.triggers.delete(t.id);
          deleted += 1;
        }
      }
      return deleted;
    });
  }

  nextDue(): Promise<number | undefined> {
    return this.t.run(() => {
      const due = [...this.t.triggers.values()]
        .filter((t) => t.state === 'pending' && t.leaseUntil === null && this.isFirstOfDevice(t))
        .map((t) => t.nextAttemptAt);
      return due.length > 0 ? Math.min(...due) : undefined;
    });
  }

  hasUnleased(): Promise<boolean> {
    return this.t.run(() =>
      [...this.t.triggers.values()].some((t) => t.state === 'pending' && t.leaseUntil === null),
    );
  }

  countPending(): Promise<number> {
    return this.t.run(
      () => [...this.t.triggers.values()].filter((t) => t.state === 'pending').length,
    );
  }

  /** One process, no previous incarnation. */
  releaseStaleLeases(): Promise<number> {
    return this.t.run(() => 0);
  }
}

export class MemoryTriggerReadModel implements TriggerReadModel {
  constructor(private readonly t: MemoryTables) {}

  latest(deviceId: string): Promise<Trigger | undefined> {
    return this.t.run(() => {
      const device = this.t.devices.get(deviceId);
      const t = device && this.t.latest(device);
      return t && publicTrigger(t);
    });
  }

  recent(deviceId: string, limit: number): Promise<Trigger[]> {
    return this.t.run(() => {
      const device = this.t.devices.get(deviceId);
      const recent: Trigger[] = [];
      // The chain from the newest back; a pruned trigger ends it.
      let t = device && this.t.latest(device);
      while (t && recent.length < limit) {
        recent.push(publicTrigger(t));
        t = t.prevId === null ? undefined : this.t.triggers.get(t.prevId);
      }
      return recent;
    });
  }

  list(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.t.run(() =>
      [...this.t.triggers.values()]
        .filter((t) => t.id > (afterId ?? 0) && (state === undefined || t.state === state))
        .slice(0, limit)
        .map(publicTrigger),
    );
  }

  countByState(): Promise<TriggerCounts> {
    return this.t.run(() => {
      const counts = zeroCounts();
      for (const t of this.t.triggers.values()) counts[t.state] += 1;
      return counts;
    });
  }
}

export class MemoryReportStore implements ReportStore {
  constructor(private readonly t: MemoryTables) {}

  reportStep(report: NewReport, historyLimit: number): MemoryStep<Report> {
    return this.t.step(() => {
      const device = this.t.device(report.deviceId);
      const kept = (this.t.reports.get(report.deviceId) ?? []).filter(
        (r) => r.at >= device.firstSeen,
      );
      const all = this.t.reports.get(report.deviceId) ?? [];
      const stored = { ...report, seq: (all.at(-1)?.seq ?? 0) + 1 };
      this.t.reports.set(report.deviceId, [...kept, stored].slice(-historyLimit));
      return { ...stored };
    });
  }

  recent(deviceId: string, limit: number): Promise<Report[]> {
    return this.t.run(() => this.own(deviceId).reverse().slice(0, limit));
  }

  latest(deviceIds: readonly string[]): Promise<Report[]> {
    return this.t.run(() =>
      deviceIds.flatMap((id) => {
        const last = this.own(id).at(-1);
        return last ? [last] : [];
      }),
    );
  }

  /** Oldest first; a deleted device's (older than the device) are not its own. */
  private own(deviceId: string): Report[] {
    const device = this.t.devices.get(deviceId);
    if (!device) return [];
    return (this.t.reports.get(deviceId) ?? [])
      .filter((r) => r.at >= device.firstSeen)
      .map((r) => ({ ...r }));
  }
}

/** Every store on one set of memory tables. */
export function memoryStores(): Stores & { tables: MemoryTables } {
  const tables = new MemoryTables();
  return {
    tables,
    db: new MemoryDatabase(tables),
    devices: new MemoryDeviceStore(tables),
    deviceReads: new MemoryDeviceReadModel(tables),
    outbox: new MemoryOutbox(tables),
    triggerReads: new MemoryTriggerReadModel(tables),
  };
}
