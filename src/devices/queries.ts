/**
 * Device read models as services see them, independent of HTTP and of the engine: the id list,
 * the console's device page (each device with its latest trigger), fleet numbers and a device's
 * recent triggers. Routes call these, never a store.
 */
import type { Trigger, TriggerCounts } from '../triggers/outbox.js';
import type { TriggerReadModel } from '../triggers/read-model.js';
import { normaliseId } from './identity.js';
import type { DeviceQuery, DeviceReadModel, DeviceWithLatestTrigger } from './read-model.js';
import type { DeviceStore } from './store.js';

export interface DevicePage {
  /** Devices matching the filter, all pages together. */
  total: number;
  items: DeviceWithLatestTrigger[];
}

export interface FleetNumbers {
  devices: number;
  /** Devices whose last registration is at or after the time asked for. */
  registeredSince: number;
  /** Devices by the state of their latest trigger. */
  byLatestTrigger: TriggerCounts;
}

export class DeviceQueries {
  constructor(
    private readonly store: DeviceReadModel,
    private readonly triggers: Pick<TriggerReadModel, 'recent'>,
    private readonly devices: Pick<DeviceStore, 'get'>,
  ) {}

  /** Device ids in ascending order, strictly after `after`. */
  listIds(after: string | undefined, limit: number): Promise<string[]> {
    return this.store.listIds(after, limit);
  }

  /** The console's device page; a blank search is no search. */
  page(q: DeviceQuery): Promise<DevicePage> {
    const search = q.search?.trim();
    return this.store.queryDevices({ ...q, search: search === '' ? undefined : search });
  }

  count(): Promise<number> {
    return this.store.countDevices();
  }

  /** Devices by the state of their latest trigger (devices without one are not counted). */
  countByLatestTrigger(): Promise<TriggerCounts> {
    return this.store.countDevicesByTrigger();
  }

  async fleet(registeredSince: number): Promise<FleetNumbers> {
    const [devices, registered, byLatestTrigger] = await Promise.all([
      this.count(),
      this.store.countSeenSince(registeredSince),
      this.countByLatestTrigger(),
    ]);
    return { devices, registeredSince: registered, byLatestTrigger };
  }

  /** A device's most recent triggers, newest first; DeviceNotFoundError for an unknown device. */
  async recentTriggers(rawId: string, limit: number): Promise<Trigger[]> {
    const id = normaliseId(rawId);
    const device = await this.devices.get(id);
    return this.triggers.recent(device.id, limit);
  }
}
