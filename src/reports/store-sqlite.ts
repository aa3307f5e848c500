/** The report store on SQLite (see store.ts); statements through the database's cache. */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Step } from '../db/unit-of-work.js';
import { DeviceNotFoundError } from '../errors.js';
import { latestReportsSql, ownReportsSql, reportFromRow, type ReportRow } from './sql.js';
import type { NewReport, Report, ReportStore } from './store.js';

const DEVICE = 'SELECT first_seen FROM devices WHERE id = ?';
const INSERT = `INSERT INTO reports (device_id, seq, at, type, message)
  VALUES (@deviceId, coalesce((SELECT max(seq) FROM reports WHERE device_id = @deviceId), 0) + 1, @at, @type, @message)
  RETURNING *`;
// The device's oldest beyond the limit, and any left by a deleted device of the same id.
const TRIM =
  'DELETE FROM reports WHERE device_id = @deviceId AND (seq <= @upto OR at < @firstSeen)';
const RECENT = `${ownReportsSql('r.device_id = ?')} ORDER BY r.seq DESC LIMIT ?`;

export class SqliteReportStore implements ReportStore {
  constructor(private readonly db: SqliteDatabase) {}

  reportStep(report: NewReport, historyLimit: number): Step<Report> {
    return this.db.step(() => {
      const device = this.db.statement<{ first_seen: number }>(DEVICE).get(report.deviceId);
      if (!device) throw new DeviceNotFoundError(report.deviceId);
      const row = reportFromRow(this.db.statement<ReportRow>(INSERT).get(report)!);
      this.db.statement(TRIM).run({
        deviceId: report.deviceId,
        upto: row.seq - historyLimit,
        firstSeen: device.first_seen,
      });
      return row;
    });
  }

  recent(deviceId: string, limit: number): Promise<Report[]> {
    return this.db.read(() =>
      this.db.statement<ReportRow>(RECENT).all(deviceId, limit).map(reportFromRow),
    );
  }

  latest(deviceIds: readonly string[]): Promise<Report[]> {
    if (deviceIds.length === 0) return Promise.resolve([]);
    // One statement per page size; the cache keeps the few sizes a console asks for.
    const sql = latestReportsSql(`device_id IN (${deviceIds.map(() => '?').join(', ')})`);
    return this.db.read(() =>
      this.db
        .statement<ReportRow>(sql)
        .all(...deviceIds)
        .map(reportFromRow),
    );
  }
}
