/** Enrollment rows and their mappers, shared by both engines (loads no driver). */
import type { Int } from '../db/sql.js';
import type { PendingDevice, RejectedDevice } from './store.js';

export interface PendingRow {
  id: string;
  ip: string;
  name: string;
  userdata: string;
  source: string;
  first_seen: Int;
  last_seen: Int;
  registrations: Int;
}

export interface RejectedRow {
  id: string;
  at: Int;
  ip: string;
  source: string;
}

export function pendingFromRow(r: PendingRow): PendingDevice {
  return {
    id: r.id,
    ip: r.ip,
    name: r.name,
    userdata: r.userdata,
    source: r.source,
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
    registrations: Number(r.registrations),
  };
}

export function rejectedFromRow(r: RejectedRow): RejectedDevice {
  return { id: r.id, at: Number(r.at), ip: r.ip, source: r.source };
}
