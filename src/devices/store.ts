/**
 * The device records and the device store: a device's own writes (registration, edit, delete,
 * import) and its history. Imports only types, so that the browser bundle's typecheck may read it
 * (src/console/static/tsconfig.json, through events/wire.ts).
 *
 * Times are integers: milliseconds since the Unix epoch, in every engine. The HTTP layer renders
 * them as ISO 8601. Errors: DeviceNotFoundError for an unknown id, StorageUnavailableError when
 * the engine cannot be reached or a write did not commit. A resolved write means committed
 * durably.
 */
import type { Step } from '../db/unit-of-work.js';

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

export interface HistoryEntry {
  at: number;
  ip: string;
  source: string;
}

/** What a registration's step did to the device. */
export interface RegisteredDevice {
  created: boolean;
  device: Device;
}

/** One implementation per engine: store-sqlite.ts, store-postgres.ts (and a fake in test/fakes/). */
export interface DeviceStore {
  /**
   * A registration's device write, as a step of the caller's transaction (db/unit-of-work.ts):
   * upsert the device from the registration and record a history entry, keeping the newest
   * `historyLimit` (0 keeps none).
   */
  registerStep(reg: Registration, historyLimit: number): Step<RegisteredDevice>;
  get(id: string): Promise<Device>;
  /** Replace ip/name/userdata of an existing device. Never creates. */
  edit(id: string, fields: DeviceFields, at: number): Promise<Device>;
  /** Remove a device and its history; returns what was removed. Its triggers stay the outbox's. */
  delete(id: string): Promise<Device>;
  history(id: string): Promise<HistoryEntry[]>;
  /** Insert a device exactly as exported (import); replaces an existing one, keeping its triggers. */
  importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'>;
}
