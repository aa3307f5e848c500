/**
 * Device use cases, independent of HTTP: normalise and validate input, call the stores, publish
 * committed changes. Routes stay thin and every entry point shares these rules.
 *
 * A registration is one transaction of the database's group commit made of the steps of each
 * feature concerned (db/unit-of-work.ts): the device store's upsert and, when a manager is
 * configured, the trigger queue's outbox step.
 */
import type { Database, Engine } from '../db/unit-of-work.js';
import { ZtpError } from '../errors.js';
import {
  withoutLease,
  type OutboxStore,
  type Trigger,
  type TriggerOn,
} from '../triggers/outbox.js';
import { TriggerQueries } from '../triggers/queries.js';
import { TriggerQueue, type LocalDispatcher } from '../triggers/queue.js';
import type { TriggerReadModel } from '../triggers/read-model.js';
import {
  normaliseId,
  normaliseIp,
  sourceAddress,
  validateName,
  validateUserdata,
} from './identity.js';
import type { DeviceEventSink } from './events.js';
import { DeviceQueries } from './queries.js';
import type { DeviceReadModel } from './read-model.js';
import type { Device, DeviceFields, DeviceStore, HistoryEntry } from './store.js';

/** The stores of the features a device's use cases touch, all on one database. */
export interface Stores {
  db: Database;
  devices: DeviceStore;
  deviceReads: DeviceReadModel;
  outbox: OutboxStore;
  triggerReads: TriggerReadModel;
}

export interface RegisterInput {
  ip?: string | undefined;
  name?: string | undefined;
  userdata?: string | undefined;
}

export interface ServiceOptions {
  /** True when a manager URL is configured: registrations enqueue a trigger. */
  triggersEnabled: boolean;
  historyLimit: number;
  events: DeviceEventSink;
  /**
   * The local trigger dispatcher, if any (looked up at each registration: it is built after the
   * service); the trigger queue (triggers/queue.ts) tells it about new triggers.
   */
  dispatcher?: () => LocalDispatcher | undefined;
  /** --trigger-on; default every-registration. */
  triggerOn?: TriggerOn;
  now?: () => number;
}

export interface DeviceDetail {
  device: Device;
  trigger: Trigger | undefined;
  history: HistoryEntry[];
}

export class DeviceService {
  readonly now: () => number;
  /** Device read models (lists, the console's page, counts). */
  readonly queries: DeviceQueries;
  /** Trigger read models (the outbox listing, counts). */
  readonly triggerQueries: TriggerQueries;
  /** Where registrations put their triggers; undefined without a manager. */
  private readonly triggers: TriggerQueue | undefined;

  constructor(
    private readonly stores: Stores,
    private readonly opts: ServiceOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.queries = new DeviceQueries(stores.deviceReads, stores.triggerReads, stores.devices);
    this.triggerQueries = new TriggerQueries(stores.triggerReads);
    this.triggers = opts.triggersEnabled
      ? new TriggerQueue(stores.outbox, opts.dispatcher, opts.triggerOn)
      : undefined;
  }

  /** Resolves with the storage engine's name when it answers; throws StorageUnavailableError. */
  async checkStorage(): Promise<Engine> {
    await this.stores.db.ping();
    return this.stores.db.engine;
  }

  get triggersEnabled(): boolean {
    return this.opts.triggersEnabled;
  }

  /** Upsert from a device's own registration; `source` is the request's peer address. */
  async register(rawId: string, input: RegisterInput, source: string | undefined) {
    const id = normaliseId(rawId);
    const src = sourceAddress(source);
    const ip = input.ip === undefined ? normaliseIp(src) : normaliseIp(input.ip);
    const fields = {
      ip,
      name: validateName(input.name ?? ''),
      userdata: validateUserdata(input.userdata ?? ''),
    };
    const at = this.now();
    const registration = this.stores.devices.registerStep(
      { id, ...fields, source: src, at },
      this.opts.historyLimit,
    );
    const queued = this.triggers?.prepare(id, ip, at);
    let result;
    let trigger;
    try {
      if (queued) [result, trigger] = await this.stores.db.commit(id, [registration, queued.step]);
      else [result] = await this.stores.db.commit(id, [registration]);
    } catch (e) {
      queued?.abandoned();
      throw e;
    }
    this.opts.events.emit({ type: 'registered', device: result.device, created: result.created });
    if (trigger) this.opts.events.emit({ type: 'trigger', trigger: withoutLease(trigger) });
    // Also without a trigger (--trigger-on ip-change suppressed it): the hand-over place is freed.
    queued?.committed(trigger);
    return trigger ? { ...result, trigger: withoutLease(trigger) } : result;
  }

  get(rawId: string): Promise<Device> {
    return this.stores.devices.get(normaliseId(rawId));
  }

  async detail(rawId: string): Promise<DeviceDetail> {
    const id = normaliseId(rawId);
    const [device, trigger, history] = await Promise.all([
      this.stores.devices.get(id),
      this.stores.triggerReads.latest(id),
      this.stores.devices.history(id),
    ]);
    return { device, trigger, history };
  }

  async edit(rawId: string, input: DeviceFields): Promise<Device> {
    const id = normaliseId(rawId);
    const fields = {
      ip: normaliseIp(input.ip),
      name: validateName(input.name),
      userdata: validateUserdata(input.userdata),
    };
    const device = await this.stores.devices.edit(id, fields, this.now());
    this.opts.events.emit({ type: 'edited', device });
    return device;
  }

  async delete(rawId: string): Promise<Device> {
    const device = await this.stores.devices.delete(normaliseId(rawId));
    this.opts.events.emit({ type: 'deleted', device });
    return device;
  }

  /** Queue a trigger for the device's current ip now (re-provision, or retry a dead/failed one). */
  async requeueTrigger(rawId: string): Promise<Trigger> {
    if (!this.triggers) {
      throw new ZtpError(
        'triggers_disabled',
        'no manager URL is configured, so no trigger can be queued',
      );
    }
    const trigger = await this.triggers.requeue(normaliseId(rawId), this.now());
    this.opts.events.emit({ type: 'trigger', trigger });
    return trigger;
  }
}
