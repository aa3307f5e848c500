/**
 * What the event stream carries (the `data:` of GET /ztp/mng/events). This module imports only
 * types from the feature record modules (devices/store.ts, triggers/outbox.ts), so that the browser bundle (src/console/static/app.ts) can import it.
 */
import type { Device } from '../devices/store.js';
import type { Report } from '../reports/store.js';
import type { Trigger } from '../triggers/outbox.js';
import { iso } from '../time.js';

/** Device as carried by events: the record without userdata (which may be 64 KiB). */
export interface DeviceEventData {
  id: string;
  ip: string;
  name: string;
  firstSeen: string;
  lastSeen: string;
  registrations: number;
  lastSource: string;
}

export interface TriggerEventData {
  id: number;
  deviceId: string;
  ip: string;
  /** registered, retriggered, approved, or report (a forwarded report: not the device's trigger). */
  type: string;
  state: Trigger['state'];
  attempts: number;
  createdAt: string;
  lastError: string | null;
  deliveredAt: string | null;
}

/** A device's progress report (POST /ztp/report/{id}), as the API's report view plus its device. */
export interface ReportEventData {
  deviceId: string;
  seq: number;
  at: string;
  type: string;
  message: string;
}

export function reportEventData(r: Report): ReportEventData {
  return { deviceId: r.deviceId, seq: r.seq, at: iso(r.at), type: r.type, message: r.message };
}

/** A device without its userdata (up to 64 KiB): for events and the console's table rows. */
export function deviceSummary(d: Device): DeviceEventData {
  return {
    id: d.id,
    ip: d.ip,
    name: d.name,
    firstSeen: iso(d.firstSeen),
    lastSeen: iso(d.lastSeen),
    registrations: d.registrations,
    lastSource: d.lastSource,
  };
}

/**
 * The API's trigger view (src/triggers/views.ts) without its time-dependent members: an event is a
 * fact, replayed later.
 */
export function triggerEventData(t: Trigger): TriggerEventData {
  return {
    id: t.id,
    deviceId: t.deviceId,
    ip: t.ip,
    type: t.type,
    state: t.state,
    attempts: t.attempts,
    createdAt: iso(t.createdAt),
    lastError: t.lastError,
    deliveredAt: t.deliveredAt === null ? null : iso(t.deliveredAt),
  };
}
