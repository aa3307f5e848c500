/**
 * The enrollment records and store: registrations of unknown devices waiting for an admin
 * (approve mode) and the ids an admin rejected. Kept out of the devices table, so that a pending
 * device is invisible to everything that reads devices (the manager's lookups, lists, triggers)
 * until it is approved. Imports only types.
 *
 * Writes are steps (db/unit-of-work.ts): approving a device is one transaction made of this
 * store's step that takes the pending row, the device store's registration step and the outbox's
 * trigger step, committed together by the enrollment service.
 */
import type { Step } from '../db/unit-of-work.js';
import type { Alias } from '../devices/store.js';

/** A registration waiting for approval: the latest one's fields and when it was first/last seen. */
export interface PendingDevice {
  id: string;
  ip: string;
  name: string;
  userdata: string;
  /** Address the latest registration came from ('' when unknown). */
  source: string;
  /**
   * The aliases its registrations carried (identity headers, a body's `aliases`), newest first:
   * rules match them and approval gives them to the device.
   */
  aliases: Alias[];
  firstSeen: number;
  lastSeen: number;
  registrations: number;
}

export interface PendingRegistration {
  id: string;
  ip: string;
  name: string;
  userdata: string;
  source: string;
  aliases: readonly Alias[];
  at: number;
}

/** An id whose registrations are refused until an admin lifts the rejection. */
export interface RejectedDevice {
  id: string;
  /** When it was rejected. */
  at: number;
  /** The last ip and source address it registered with before it was rejected. */
  ip: string;
  source: string;
}

/** One implementation per engine: store-sqlite.ts, store-postgres.ts (and a fake in test/fakes/). */
export interface EnrollmentStore {
  /**
   * Upserts the pending registration (re-registrations update it and count, and add their
   * aliases to those kept: mergePendingAliases); throws DeviceRejectedError when the id is
   * rejected.
   */
  pendStep(reg: PendingRegistration): Step<{ created: boolean; pending: PendingDevice }>;
  /** Removes and returns the pending registration; throws NotPendingError when there is none. */
  takeStep(id: string): Step<PendingDevice>;
  /** Removes the pending registration if there is one (a device accepted by a rule). */
  dropStep(id: string): Step<void>;
  /**
   * Removes the pending registration and records the id as rejected; AlreadyRejectedError when
   * it is already, NotPendingError when it is not pending.
   */
  rejectStep(id: string, at: number): Step<RejectedDevice>;
  /** Lifts a rejection; NotRejectedError when the id is not rejected. */
  liftStep(id: string): Step<RejectedDevice>;
  getPending(id: string): Promise<PendingDevice | undefined>;
  getRejected(id: string): Promise<RejectedDevice | undefined>;
  /** Pending devices by id, after `after`, at most `limit`. */
  listPending(after: string | undefined, limit: number): Promise<PendingDevice[]>;
  countPending(): Promise<number>;
  listRejected(after: string | undefined, limit: number): Promise<RejectedDevice[]>;
}

/**
 * The aliases a pending device keeps: the new registration's, then the ones kept before that it
 * did not repeat, at most ALIASES_PER_DEVICE_MAX (the oldest dropped), so that its approval can
 * give them all to the device.
 */
export function mergePendingAliases(
  kept: readonly Alias[],
  added: readonly Alias[],
  max: number,
): Alias[] {
  const byValue = new Map<string, Alias>();
  for (const a of [...added, ...kept]) if (!byValue.has(a.value)) byValue.set(a.value, a);
  return [...byValue.values()].slice(0, max);
}
