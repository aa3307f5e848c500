/**
 * Device SQL both engines run as it is (each binds its own parameter syntax). Loads no database
 * driver (scripts/check-boundaries.mjs).
 */
import type { DeviceQuery } from './read-model.js';

/** Devices by the state of their latest trigger. */
export const COUNT_DEVICES_BY_TRIGGER_SQL =
  'SELECT t.state, count(*) AS n FROM devices d JOIN triggers t ON t.id = d.last_trigger_id GROUP BY t.state';

/**
 * The condition of DeviceQuery.triggerState (`state` is an SQL parameter): the device's latest
 * trigger, found through its last_trigger_id, is in that state.
 */
export function latestTriggerStateSql(state: string): string {
  return `EXISTS (SELECT 1 FROM triggers t WHERE t.id = devices.last_trigger_id AND t.state = ${state})`;
}

/**
 * A page of devices (`devicePageSql`, a SELECT of device rows, ordered and limited) joined with
 * each one's latest trigger. The page is cut first so that only its rows are joined; the trigger's
 * columns carry a `trigger_` prefix (rows.ts JoinedTriggerColumns), all NULL for a device without
 * one. A join keeps no order, so the page's order is given again.
 */
export function withLatestTriggerSql(devicePageSql: string, orderBy: string): string {
  return `SELECT page.*,
      t.id AS trigger_id, t.device_id AS trigger_device_id, t.ip AS trigger_ip,
      t.type AS trigger_type, t.previous_ip AS trigger_previous_ip, t.key AS trigger_key, t.state AS trigger_state, t.attempts AS trigger_attempts,
      t.created_at AS trigger_created_at, t.next_attempt_at AS trigger_next_attempt_at,
      t.lease_until AS trigger_lease_until, t.last_error AS trigger_last_error,
      t.delivered_at AS trigger_delivered_at, t.updated_at AS trigger_updated_at
    FROM (${devicePageSql}) page LEFT JOIN triggers t ON t.id = page.last_trigger_id
    ORDER BY ${orderBy}`;
}

/** ORDER BY of a device page (DeviceQuery.sort/order), ties broken by id; `table` qualifies. */
export function devicePageOrder(q: Pick<DeviceQuery, 'sort' | 'order'>, table?: string): string {
  const at = table === undefined ? '' : `${table}.`;
  const dir = q.order === 'desc' ? 'DESC' : 'ASC';
  return `${at}${SORT_COLUMNS[q.sort ?? 'id']} ${dir}, ${at}id ${dir}`;
}

const SORT_COLUMNS: Record<NonNullable<DeviceQuery['sort']>, string> = {
  id: 'id',
  lastSeen: 'last_seen',
  ip: 'ip',
  name: 'name',
  registrations: 'registrations',
};
