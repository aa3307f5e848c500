/**
 * The test harness of the store contracts: every feature store of one database behind one
 * object (`StoreView`), so that one suite (store-suite.ts) and the tests of the engines' specifics
 * exercise the real stores on memory, SQLite and PostgreSQL alike. A registration goes through
 * the database's Transactor exactly as DeviceService composes it: the device store's step, then
 * the outbox's.
 */
import type { Checkpointer } from '../../src/db/checkpoint.js';
import {
  openPostgresDatabase,
  type PostgresDatabase,
  type PostgresOptions,
} from '../../src/db/postgres/database.js';
import { SqliteDatabase, type SqliteDatabaseOptions } from '../../src/db/sqlite/database.js';
import type { Engine } from '../../src/db/unit-of-work.js';
import { PostgresDeviceReadModel } from '../../src/devices/read-model-postgres.js';
import { SqliteDeviceReadModel } from '../../src/devices/read-model-sqlite.js';
import type { DeviceQuery, DeviceWithLatestTrigger } from '../../src/devices/read-model.js';
import type { Stores } from '../../src/devices/service.js';
import { PostgresDeviceStore } from '../../src/devices/store-postgres.js';
import { SqliteDeviceStore } from '../../src/devices/store-sqlite.js';
import type {
  Alias,
  Device,
  DeviceRecord,
  DevicePatch,
  HistoryEntry,
  Registration,
} from '../../src/devices/store.js';
import { PostgresOutbox } from '../../src/triggers/outbox-postgres.js';
import { SqliteOutbox } from '../../src/triggers/outbox-sqlite.js';
import type {
  ClaimedTrigger,
  CompleteOptions,
  ForwardedReport,
  Trigger,
  TriggerCounts,
  TriggerOutcome,
  TriggerState,
} from '../../src/triggers/outbox.js';
import { PostgresTriggerReadModel } from '../../src/triggers/read-model-postgres.js';
import { SqliteTriggerReadModel } from '../../src/triggers/read-model-sqlite.js';
import { memoryStores, type MemoryTables } from '../fakes/memory-stores.js';

export interface RegisterOptions {
  /** Commit the outbox's step with the device's (a manager is configured). */
  enqueueTrigger: boolean;
  historyLimit: number;
  /** OutboxStore.enqueueStep's hand-over lease. */
  handOverLeaseMs?: number;
  /** --trigger-on ip-change (OutboxStore.enqueueStep). */
  onIpChangeOnly?: boolean;
}

export interface RegisterResult {
  created: boolean;
  device: Device;
  trigger?: Trigger | ClaimedTrigger;
}

/** Every store of one database, by the names the suites use. */
export class StoreView {
  constructor(readonly stores: Stores) {}

  get engine(): Engine {
    return this.stores.db.engine;
  }

  async register(reg: Registration, opts: RegisterOptions): Promise<RegisterResult> {
    const { db, devices, outbox } = this.stores;
    const device = devices.registerStep(reg, opts.historyLimit);
    if (!opts.enqueueTrigger) {
      const [result] = await db.commit(reg.id, [device]);
      return result;
    }
    const [result, trigger] = await db.commit(reg.id, [
      device,
      outbox.enqueueStep(reg.id, reg.ip, reg.at, {
        handOverLeaseMs: opts.handOverLeaseMs,
        onIpChangeOnly: opts.onIpChangeOnly,
      }),
    ]);
    return trigger === undefined ? result : { ...result, trigger };
  }

  get(id: string): Promise<Device> {
    return this.stores.devices.get(id);
  }

  record(id: string): Promise<DeviceRecord> {
    return this.stores.devices.record(id);
  }
  async edit(id: string, patch: DevicePatch, at: number): Promise<Device> {
    const [{ after }] = await this.stores.db.commit(id, [
      this.stores.devices.editStep(id, patch, at),
    ]);
    return after;
  }
  resolveId(idOrAlias: string): Promise<string> {
    return this.stores.devices.resolveId(idOrAlias);
  }
  aliases(id: string): Promise<Alias[]> {
    return this.stores.devices.aliases(id);
  }
  async addAliases(id: string, aliases: readonly Alias[], limit = 32): Promise<Alias[]> {
    const [{ after }] = await this.stores.db.commit(id, [
      this.stores.devices.addAliasesStep(id, aliases, limit),
    ]);
    return after;
  }
  async removeAlias(id: string, alias: Alias): Promise<void> {
    await this.stores.db.commit(id, [this.stores.devices.removeAliasStep(id, alias)]);
  }
  bareMacIds(limit: number): Promise<string[]> {
    return this.stores.deviceReads.bareMacIds(limit);
  }
  async delete(id: string): Promise<Device> {
    const [removed] = await this.stores.db.commit(id, [this.stores.devices.deleteStep(id)]);
    return removed;
  }
  history(id: string): Promise<HistoryEntry[]> {
    return this.stores.devices.history(id);
  }
  async importDevice(
    device: Device,
    history: HistoryEntry[],
    aliases?: readonly Alias[],
  ): Promise<'created' | 'replaced'> {
    const [{ before }] = await this.stores.db.commit(device.id, [
      this.stores.devices.importDeviceStep(device, history, aliases),
    ]);
    return before === undefined ? 'created' : 'replaced';
  }
  listIds(after: string | undefined, limit: number): Promise<string[]> {
    return this.stores.deviceReads.listIds(after, limit);
  }
  queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    return this.stores.deviceReads.queryDevices(q);
  }
  countDevices(): Promise<number> {
    return this.stores.deviceReads.countDevices();
  }
  countSeenSince(since: number): Promise<number> {
    return this.stores.deviceReads.countSeenSince(since);
  }
  countDevicesByTrigger(): Promise<TriggerCounts> {
    return this.stores.deviceReads.countDevicesByTrigger();
  }
  /** A report's forward (--report-forward), committed alone. */
  async forward(
    deviceId: string,
    report: ForwardedReport,
    at: number,
  ): Promise<Trigger | undefined> {
    const [trigger] = await this.stores.db.commit(deviceId, [
      this.stores.outbox.forwardStep(deviceId, report, at),
    ]);
    return trigger;
  }
  async requeueTrigger(id: string, at: number): Promise<Trigger> {
    const [trigger] = await this.stores.db.commit(id, [this.stores.outbox.requeueStep(id, at)]);
    return trigger;
  }
  claimTriggers(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    return this.stores.outbox.claim(now, limit, leaseMs);
  }
  completeTrigger(
    trigger: ClaimedTrigger,
    outcome: TriggerOutcome,
    opts?: CompleteOptions,
  ): Promise<boolean> {
    return this.stores.outbox.complete(trigger, outcome, opts);
  }
  lastDeliveredIp(id: string): Promise<string | undefined> {
    return this.stores.outbox.lastDeliveredIp(id);
  }
  pruneTriggers(before: number): Promise<number> {
    return this.stores.outbox.prune(before);
  }
  nextTriggerDue(): Promise<number | undefined> {
    return this.stores.outbox.nextDue();
  }
  hasUnleasedTriggers(): Promise<boolean> {
    return this.stores.outbox.hasUnleased();
  }
  countPendingTriggers(): Promise<number> {
    return this.stores.outbox.countPending();
  }
  releaseStaleLeases(): Promise<number> {
    return this.stores.outbox.releaseStaleLeases();
  }
  latestTrigger(deviceId: string): Promise<Trigger | undefined> {
    return this.stores.triggerReads.latest(deviceId);
  }
  recentTriggers(deviceId: string, limit: number): Promise<Trigger[]> {
    return this.stores.triggerReads.recent(deviceId, limit);
  }
  listTriggers(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.stores.triggerReads.list(state, afterId, limit);
  }
  countTriggers(): Promise<TriggerCounts> {
    return this.stores.triggerReads.countByState();
  }
  ping(): Promise<void> {
    return this.stores.db.ping();
  }
  close(): Promise<void> {
    return this.stores.db.close();
  }
}

/** The memory fakes behind the view. */
export class MemoryStore extends StoreView {
  readonly tables: MemoryTables;

  constructor() {
    const stores = memoryStores();
    super(stores);
    this.tables = stores.tables;
  }
}

/** The SQLite stores on one SqliteDatabase, with its internals for the engine's own tests. */
export class SqliteStore extends StoreView {
  readonly database: SqliteDatabase;
  private readonly outbox: SqliteOutbox;

  constructor(path: string, opts: SqliteDatabaseOptions = {}) {
    const database = new SqliteDatabase(path, opts);
    const outbox = new SqliteOutbox(database);
    super({
      db: database,
      devices: new SqliteDeviceStore(database),
      deviceReads: new SqliteDeviceReadModel(database),
      outbox,
      triggerReads: new SqliteTriggerReadModel(database),
    });
    this.database = database;
    this.outbox = outbox;
  }

  /** The current connection. */
  get db() {
    return this.database.connection;
  }
  get path(): string {
    return this.database.path;
  }
  get releasedLeases(): number {
    return this.outbox.releasedLeases;
  }
  get walFsyncs(): number {
    return this.database.walFsyncs;
  }
  get walTruncations(): number {
    return this.database.walTruncations;
  }
  get checkpointer(): Checkpointer | undefined {
    return this.database.checkpointer;
  }
  checkpoint(mode?: 'PASSIVE' | 'TRUNCATE'): void {
    this.database.checkpoint(mode);
  }
}

export class PostgresStore extends StoreView {
  constructor(
    readonly database: PostgresDatabase,
    instanceId?: string,
  ) {
    super({
      db: database,
      devices: new PostgresDeviceStore(database),
      deviceReads: new PostgresDeviceReadModel(database),
      outbox: new PostgresOutbox(database, { instanceId }),
      triggerReads: new PostgresTriggerReadModel(database),
    });
  }

  get pool() {
    return this.database.pool;
  }
}

/** PostgresOptions of the database plus the outbox's instance id. */
export type PostgresStoreOptions = PostgresOptions & { instanceId?: string };

export async function openPostgresStore(
  url: string,
  opts: PostgresStoreOptions = {},
): Promise<PostgresStore> {
  const { instanceId, ...dbOpts } = opts;
  return new PostgresStore(await openPostgresDatabase(url, dbOpts), instanceId);
}
