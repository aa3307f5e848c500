/** The report store on PostgreSQL (see store.ts). */
import { int, lit, type PostgresDatabase } from '../db/postgres/database.js';
import type { PgFunctionStep } from '../db/unit-of-work.js';
import { DeviceNotFoundError } from '../errors.js';
import { latestReportsSql, ownReportsSql, reportFromRow, type ReportRow } from './sql.js';
import type { NewReport, Report, ReportStore } from './store.js';

export class PostgresReportStore implements ReportStore {
  constructor(private readonly db: PostgresDatabase) {}

  /**
   * A function step: an unknown device must fail the unit (a statements step may not throw).
   * FOR UPDATE: the registration's lock on the device row, so that two reports of one device
   * never take the same seq.
   */
  reportStep(report: NewReport, historyLimit: number): PgFunctionStep<Report> {
    const id = lit(report.deviceId);
    return {
      engine: 'postgres',
      run: async (c) => {
        const device = await c.query(`SELECT first_seen FROM devices WHERE id = ${id} FOR UPDATE`);
        const firstSeen = (device.rows[0] as { first_seen: string } | undefined)?.first_seen;
        if (firstSeen === undefined) throw new DeviceNotFoundError(report.deviceId);
        const { rows } = await c.query(
          `INSERT INTO reports (device_id, seq, at, type, message)
           VALUES (${id}, coalesce((SELECT max(seq) FROM reports WHERE device_id = ${id}), 0) + 1,
             ${int(report.at)}, ${lit(report.type)}, ${lit(report.message)})
           RETURNING *`,
        );
        const row = reportFromRow(rows[0] as ReportRow);
        await c.query(
          `DELETE FROM reports WHERE device_id = ${id}
             AND (seq <= ${int(row.seq - historyLimit)} OR at < ${int(Number(firstSeen))})`,
        );
        return row;
      },
    };
  }

  async recent(deviceId: string, limit: number): Promise<Report[]> {
    const { rows } = await this.db.query<ReportRow>(
      `${ownReportsSql('r.device_id = $1')} ORDER BY r.seq DESC LIMIT $2`,
      [deviceId, limit],
    );
    return rows.map(reportFromRow);
  }

  async latest(deviceIds: readonly string[]): Promise<Report[]> {
    if (deviceIds.length === 0) return [];
    const { rows } = await this.db.query<ReportRow>(latestReportsSql('device_id = ANY($1)'), [
      deviceIds,
    ]);
    return rows.map(reportFromRow);
  }
}
