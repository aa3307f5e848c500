/**
 * The device read models behind the console and the list queries, one implementation per engine
 * (read-model-sqlite.ts, read-model-postgres.ts): joins, never a query per row.
 */
import type { Trigger, TriggerCounts, TriggerState } from '../triggers/outbox.js';
import type { Device } from './store.js';

export interface DeviceQuery {
  /** Case-insensitive substring of id, name, ip or one of the device's aliases. */
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

export interface DeviceReadModel {
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
  /**
   * Devices by the state of their latest trigger (devices without one are not counted): what
   * "failed" means to an operator, a device whose provisioning call failed, however often it
   * was re-queued.
   */
  countDevicesByTrigger(): Promise<TriggerCounts>;
  /**
   * Ids that are bare 12-hex MACs: left by migration 4 because the canonical MAC was taken; no
   * request can address them (a path id is normalised), so the server names them at start.
   */
  bareMacIds(limit: number): Promise<string[]>;
}
