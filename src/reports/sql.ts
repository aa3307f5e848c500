/**
 * Report SQL both engines run as it is (each binds its own parameter syntax), and the row mapper.
 * Loads no driver.
 */
import type { ProgressType } from './progress.js';
import type { Report } from './store.js';

/** Reports whose device exists and is not younger than them (a deleted device's are not). */
export function ownReportsSql(where: string): string {
  return `SELECT r.* FROM reports r JOIN devices d ON d.id = r.device_id AND r.at >= d.first_seen WHERE ${where}`;
}

/** Latest own report of each device of `ids` (an SQL list or array expression). */
export function latestReportsSql(idCondition: string): string {
  return `SELECT r.* FROM reports r
    JOIN (SELECT device_id, max(seq) AS seq FROM reports WHERE ${idCondition} GROUP BY device_id) m
      ON m.device_id = r.device_id AND m.seq = r.seq
    JOIN devices d ON d.id = r.device_id AND r.at >= d.first_seen`;
}

export interface ReportRow {
  device_id: string;
  seq: number | string | bigint;
  at: number | string | bigint;
  type: string;
  message: string;
}

export function reportFromRow(r: ReportRow): Report {
  return {
    deviceId: r.device_id,
    seq: Number(r.seq),
    at: Number(r.at),
    // Written only after validation (progress.ts).
    type: r.type as ProgressType,
    message: r.message,
  };
}
