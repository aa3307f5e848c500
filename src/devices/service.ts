/**
 * Device use cases, independent of HTTP: normalise and validate input, call the store, publish
 * committed changes. Routes stay thin and every entry point shares these rules.
 */
import { ZtpError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import {
  isClaimed,
  withoutLease,
  type ClaimedTrigger,
  type Device,
  type DeviceFields,
  type HistoryEntry,
  type Store,
  type Trigger,
} from '../storage/store.js';
import { TriggerQueries } from '../triggers/queries.js';
import {
  normaliseId,
  normaliseIp,
  sourceAddress,
  validateName,
  validateUserdata,
} from './identity.js';
import { DeviceQueries } from './queries.js';

export interface RegisterInput {
  ip?: string | undefined;
  name?: string | undefined;
  userdata?: string | undefined;
}

export interface ServiceOptions {
  /** True when a manager URL is configured: registrations enqueue a trigger. */
  triggersEnabled: boolean;
  historyLimit: number;
  events: EventBus;
  /**
   * The local trigger dispatcher, if any (looked up at each registration: it is built after the
   * service). Its new triggers are handed over to it or wake it.
   */
  dispatcher?: () => LocalDispatcher | undefined;
  now?: () => number;
}

/** What registrations need from the local trigger dispatcher (src/triggers/dispatcher.ts). */
export interface LocalDispatcher {
  /** The lease for a hand-over, or undefined; endReservation() once the write has ended. */
  reserveHandOver(): number | undefined;
  endReservation(): void;
  /** A trigger the store leased with that lease. */
  handOver(trigger: ClaimedTrigger): void;
  /** A trigger was committed that the dispatcher must claim. */
  wake(): void;
}

export interface DeviceDetail {
  device: Device;
  trigger: Trigger | undefined;
  history: HistoryEntry[];
}

export class DeviceService {
  readonly now: () => number;
  /** Device read models (lists, the console's page, counts) over the same store. */
  readonly queries: DeviceQueries;
  /** Trigger read models (the outbox listing, counts) over the same store. */
  readonly triggerQueries: TriggerQueries;

  constructor(
    private readonly store: Store,
    private readonly opts: ServiceOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.queries = new DeviceQueries(store);
    this.triggerQueries = new TriggerQueries(store);
  }

  /** Resolves with the storage engine's name when it answers; throws StorageUnavailableError. */
  async checkStorage(): Promise<Store['engine']> {
    await this.store.ping();
    return this.store.engine;
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
    const triggers = this.opts.triggersEnabled;
    const dispatcher = triggers ? this.opts.dispatcher?.() : undefined;
    const handOverLeaseMs = dispatcher?.reserveHandOver();
    let result;
    try {
      result = await this.store.register(
        { id, ...fields, source: src, at: this.now() },
        { enqueueTrigger: triggers, historyLimit: this.opts.historyLimit, handOverLeaseMs },
      );
    } finally {
      if (handOverLeaseMs !== undefined) dispatcher?.endReservation();
    }
    this.opts.events.emit({ type: 'registered', device: result.device, created: result.created });
    const { trigger } = result;
    if (trigger) {
      this.opts.events.emit({ type: 'trigger', trigger: withoutLease(trigger) });
      // Leased by the store (only when asked): handed over, the lease is the claim; otherwise
      // the loop claims it.
      if (isClaimed(trigger)) dispatcher?.handOver(trigger);
      else dispatcher?.wake();
    }
    return result;
  }

  get(rawId: string): Promise<Device> {
    return this.store.get(normaliseId(rawId));
  }

  async detail(rawId: string): Promise<DeviceDetail> {
    const id = normaliseId(rawId);
    const [device, trigger, history] = await Promise.all([
      this.store.get(id),
      this.store.latestTrigger(id),
      this.store.history(id),
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
    const device = await this.store.edit(id, fields, this.now());
    this.opts.events.emit({ type: 'edited', device });
    return device;
  }

  async delete(rawId: string): Promise<Device> {
    const device = await this.store.delete(normaliseId(rawId));
    this.opts.events.emit({ type: 'deleted', device });
    return device;
  }

  /** Queue a trigger for the device's current ip now (re-provision, or retry a dead/failed one). */
  async requeueTrigger(rawId: string): Promise<Trigger> {
    if (!this.opts.triggersEnabled) {
      throw new ZtpError(
        'triggers_disabled',
        'no manager URL is configured, so no trigger can be queued',
      );
    }
    const trigger = await this.store.requeueTrigger(normaliseId(rawId), this.now());
    this.opts.events.emit({ type: 'trigger', trigger });
    this.opts.dispatcher?.()?.wake();
    return trigger;
  }
}
