/** Enrollment rows and their mappers, shared by both engines (loads no driver). */
import type { Int } from '../db/sql.js';
import type { Alias } from '../devices/store.js';
import type { PendingDevice, RejectedDevice } from './store.js';

export interface PendingRow {
  id: string;
  ip: string;
  name: string;
  userdata: string;
  source: string;
  /** Schema version 10: a JSON array of {type, value}. */
  aliases: string;
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
    aliases: aliasesFromColumn(r.aliases),
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
    registrations: Number(r.registrations),
  };
}

export function rejectedFromRow(r: RejectedRow): RejectedDevice {
  return { id: r.id, at: Number(r.at), ip: r.ip, source: r.source };
}

/** The pending aliases column: written only by aliasesColumn() from normalised aliases. */
export function aliasesFromColumn(text: string): Alias[] {
  return JSON.parse(text) as Alias[];
}

export function aliasesColumn(aliases: readonly Alias[]): string {
  return JSON.stringify(aliases.map((a) => ({ type: a.type, value: a.value })));
}
