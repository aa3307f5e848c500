/**
 * Device rows and their mappers, shared by both engines. Loads no database driver, so that each
 * engine module loads only its own (scripts/check-boundaries.mjs).
 */
import type { Int } from '../db/sql.js';
import { triggerFromRow, type TriggerRow } from '../triggers/rows.js';
import type { DeviceWithLatestTrigger } from './read-model.js';
import type { Alias, Device } from './store.js';

export interface DeviceRow {
  id: string;
  ip: string;
  name: string;
  userdata: string;
  first_seen: Int;
  last_seen: Int;
  updated_at: Int;
  registrations: Int;
  last_source: string;
  /** The device's newest trigger (schema version 3). */
  last_trigger_id?: Int | null;
  /** Pins and reported values (schema version 4). */
  pinned_name: Int | boolean;
  pinned_userdata: Int | boolean;
  reported_name: string | null;
  reported_userdata: string | null;
}

export interface AliasRow {
  type: string;
  value: string;
}

export function aliasFromRow(r: AliasRow): Alias {
  return { type: r.type as Alias['type'], value: r.value };
}

export function deviceFromRow(r: DeviceRow): Device {
  return {
    id: r.id,
    ip: r.ip,
    name: r.name,
    userdata: r.userdata,
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
    updatedAt: Number(r.updated_at),
    registrations: Number(r.registrations),
    lastSource: r.last_source,
    pinned: { name: Number(r.pinned_name) === 1, userdata: Number(r.pinned_userdata) === 1 },
    reported: { name: r.reported_name, userdata: r.reported_userdata },
  };
}

/**
 * A trigger's columns as sql.ts withLatestTriggerSql selects them (no lease token: readers never
 * see it; no forwarded report: a device's latest trigger is never one).
 */
type JoinedTriggerColumns = {
  [
    K in Exclude<
      keyof TriggerRow,
      'lease_token' | 'report_type' | 'report_message'
    > as `trigger_${K}`
  ]: TriggerRow[K];
};

/** A device row joined with its latest trigger; the trigger's columns are NULL without one. */
export type DeviceWithTriggerRow = DeviceRow & (JoinedTriggerColumns | { trigger_id: null });

export function deviceWithTriggerFromRow(r: DeviceWithTriggerRow): DeviceWithLatestTrigger {
  if (r.trigger_id === null) return { device: deviceFromRow(r), latestTrigger: undefined };
  return {
    device: deviceFromRow(r),
    latestTrigger: triggerFromRow({
      id: r.trigger_id,
      device_id: r.trigger_device_id,
      ip: r.trigger_ip,
      type: r.trigger_type,
      previous_ip: r.trigger_previous_ip,
      report_type: null,
      report_message: null,
      key: r.trigger_key,
      state: r.trigger_state,
      attempts: r.trigger_attempts,
      created_at: r.trigger_created_at,
      next_attempt_at: r.trigger_next_attempt_at,
      lease_until: r.trigger_lease_until,
      lease_token: null,
      last_error: r.trigger_last_error,
      delivered_at: r.trigger_delivered_at,
      updated_at: r.trigger_updated_at,
    }),
  };
}
