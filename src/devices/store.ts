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

/** The kinds of identifier a device may be known by besides its primary id (identity.ts checks them). */
export type AliasType = 'mac' | 'serial' | 'cpu' | 'dmi' | 'machine-id';

export interface Alias {
  type: AliasType;
  value: string;
}

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
  /** Fields an operator pinned: registrations do not change them. */
  pinned: Pins;
  /** What the device itself last reported for each field (null: it never sent one). */
  reported: Reported;
}

export interface Pins {
  name: boolean;
  userdata: boolean;
}

export interface Reported {
  name: string | null;
  userdata: string | null;
}

/** An admin edit: members present are set, members absent keep their stored value. */
export interface DevicePatch {
  ip?: string | undefined;
  name?: string | undefined;
  userdata?: string | undefined;
  pinned?: Partial<Pins> | undefined;
}

/** What `GET /ztp/check/{id}` shows of a device. */
export type DeviceRecord = Pick<Device, 'id' | 'ip' | 'name' | 'userdata'>;

/**
 * A device's own registration. `id` is the primary id the service resolved (an alias's holder);
 * a name or userdata left undefined keeps the stored value, and a pinned one is only recorded as
 * reported. Aliases are added, never removed.
 */
export interface Registration {
  id: string;
  ip: string;
  name?: string | undefined;
  userdata?: string | undefined;
  aliases?: readonly Alias[] | undefined;
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

/** What a write step did: the value as it was and as it is, both read in its transaction. */
export interface Change<T> {
  before: T;
  after: T;
}

/** One implementation per engine: store-sqlite.ts, store-postgres.ts (and a fake in test/fakes/). */
export interface DeviceStore {
  /**
   * A registration's device write, as a step of the caller's transaction (db/unit-of-work.ts):
   * upsert the device from the registration and record a history entry, keeping the newest
   * `historyLimit` (0 keeps none).
   */
  registerStep(reg: Registration, historyLimit: number): Step<RegisteredDevice>;
  /** The device whose primary id, or else one of whose aliases, is `idOrAlias`. */
  get(idOrAlias: string): Promise<Device>;
  /**
   * Like get(), only the record the manager's lookup answers: the hottest read, so it reads
   * four columns instead of the whole row.
   */
  record(idOrAlias: string): Promise<DeviceRecord>;
  /** The primary id of the device holding alias `idOrAlias`, else `idOrAlias` itself. */
  resolveId(idOrAlias: string): Promise<string>;
  /**
   * An admin edit of an existing device (primary id), as a step; never creates. Returns the
   * device as it was and as it is, both read inside the step.
   */
  editStep(id: string, patch: DevicePatch, at: number): Step<Change<Device>>;
  /**
   * Removes a device, its history and aliases, as a step; returns what was removed. Its
   * triggers stay the outbox's.
   */
  deleteStep(id: string): Step<Device>;
  history(id: string): Promise<HistoryEntry[]>;
  /** A device's aliases, by value. */
  aliases(id: string): Promise<Alias[]>;
  /**
   * Adds aliases to a device (primary id), as a step: AliasConflictError when one is another
   * device's alias or primary id, `too_many_aliases` past `limit`; nothing stored then. Returns
   * its aliases before and after.
   */
  addAliasesStep(id: string, aliases: readonly Alias[], limit: number): Step<Change<Alias[]>>;
  /**
   * Removes one alias of a device, as a step; `alias_not_found` when it holds no such alias.
   * Returns its aliases before and after.
   */
  removeAliasStep(id: string, alias: Alias): Step<Change<Alias[]>>;
  /**
   * Inserts a device exactly as exported (import), with its aliases, as a step; replaces an
   * existing one, keeping its triggers. AliasConflictError when an alias belongs to another
   * device. `before` is the replaced device, undefined when it is created.
   */
  importDeviceStep(
    device: Device,
    history: HistoryEntry[],
    aliases?: readonly Alias[],
  ): Step<{ before: Device | undefined; after: Device }>;
}
