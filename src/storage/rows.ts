/**
 * Row shapes and row → object mappers shared by both engines. Loads no database driver, so that
 * each engine module loads only its own (scripts/check-boundaries.mjs).
 */
import {
  settle,
  type ClaimedTrigger,
  type Device,
  type DeviceWithLatestTrigger,
  type Trigger,
  type TriggerOutcome,
  type TriggerState,
} from './store.js';

/** `pg` returns BIGINT columns as strings. */
export type Int = number | string;

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
}

export interface TriggerRow {
  id: Int;
  device_id: string;
  ip: string;
  key: string;
  state: TriggerState;
  attempts: Int;
  created_at: Int;
  next_attempt_at: Int;
  lease_until: Int | null;
  lease_token: string | null;
  last_error: string | null;
  delivered_at: Int | null;
  updated_at: Int;
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
  };
}

/** A trigger as any reader sees it: without the lease token, which only its holder gets. */
export function triggerFromRow(r: TriggerRow): Trigger {
  return {
    id: Number(r.id),
    deviceId: r.device_id,
    ip: r.ip,
    key: r.key,
    state: r.state,
    attempts: Number(r.attempts),
    createdAt: Number(r.created_at),
    nextAttemptAt: Number(r.next_attempt_at),
    leaseUntil: r.lease_until === null ? null : Number(r.lease_until),
    lastError: r.last_error,
    deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at),
    updatedAt: Number(r.updated_at),
  };
}

/** A trigger's columns as sql.ts withLatestTriggerSql selects them (no lease token: readers never see it). */
type JoinedTriggerColumns = {
  [K in Exclude<keyof TriggerRow, 'lease_token'> as `trigger_${K}`]: TriggerRow[K];
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

/** A row this store just leased (a claim or a hand-over), with its token. */
export function claimedTriggerFromRow(r: TriggerRow): ClaimedTrigger {
  if (r.lease_token === null) throw new Error(`trigger ${r.id} was returned unleased by a claim`);
  return { ...triggerFromRow(r), leaseToken: r.lease_token };
}

/** Orders claimed triggers as they fell due (RETURNING gives no order). */
export function byDueTime(a: Trigger, b: Trigger): number {
  return a.nextAttemptAt - b.nextAttemptAt || a.id - b.id;
}

/** The values completeTrigger writes: the outcome rule of store.ts, under the lease's token. */
export function completionParams(trigger: ClaimedTrigger, outcome: TriggerOutcome) {
  const settled = settle(trigger, outcome);
  return {
    id: trigger.id,
    token: trigger.leaseToken,
    at: settled.updatedAt,
    state: settled.state,
    nextAttemptAt: settled.nextAttemptAt,
    error: settled.lastError,
    deliveredAt: settled.deliveredAt,
  };
}
