/** Audit rows and their mapper, shared by both engines (loads no driver). */
import type { AuditAction, AuditImage } from '../devices/admin.js';
import type { AuditEntry } from './store.js';

export interface AuditRow {
  seq: number | string | bigint;
  at: number | string | bigint;
  actor: string;
  source: string;
  action: string;
  via: string;
  device_id: string | null;
  before: string | null;
  after: string | null;
  detail: string | null;
}

const json = (image: AuditImage | null) => (image === null ? null : JSON.stringify(image));
const parsed = (text: string | null) => (text === null ? null : (JSON.parse(text) as AuditImage));

/** An entry's column values (the images as JSON text). */
export function auditValues(e: Omit<AuditEntry, 'seq'>) {
  return {
    at: e.at,
    actor: e.actor,
    source: e.source,
    action: e.action,
    via: e.via,
    device: e.device,
    before: json(e.before),
    after: json(e.after),
    detail: json(e.detail),
  };
}

export function auditFromRow(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    actor: r.actor,
    source: r.source,
    // Written only from the service's vocabulary (devices/admin.ts).
    action: r.action as AuditAction,
    via: r.via,
    device: r.device_id,
    before: parsed(r.before),
    after: parsed(r.after),
    detail: parsed(r.detail),
  };
}
