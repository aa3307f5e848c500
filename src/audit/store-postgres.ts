/** The audit store on PostgreSQL (see store.ts). */
import type { PostgresDatabase } from '../db/postgres/database.js';
import type { PgFunctionStep } from '../db/unit-of-work.js';
import type { AuditRecord } from '../devices/admin.js';
import { auditFromRow, auditValues, type AuditRow } from './sql.js';
import type { AuditEntry, AuditQuery, AuditStore } from './store.js';

export class PostgresAuditStore implements AuditStore {
  constructor(private readonly db: PostgresDatabase) {}

  /** A function step: the entry is built from the results of the steps before it. */
  appendStep(entry: () => AuditRecord): PgFunctionStep<AuditEntry> {
    return {
      engine: 'postgres',
      run: async (c) => {
        const v = auditValues(entry());
        const { rows } = await c.query(
          `INSERT INTO audit_log (at, actor, source, action, via, device_id, before, after, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
          [v.at, v.actor, v.source, v.action, v.via, v.device, v.before, v.after, v.detail],
        );
        return auditFromRow(rows[0] as AuditRow);
      },
    };
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const after = q.after ?? 0;
    const { rows } =
      q.device === undefined
        ? await this.db.query<AuditRow>(
            'SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2',
            [after, q.limit],
          )
        : await this.db.query<AuditRow>(
            'SELECT * FROM audit_log WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
            [q.device, after, q.limit],
          );
    return rows.map(auditFromRow);
  }

  async prune(before: number): Promise<number> {
    return await this.db.write('', async (c) => {
      const { rowCount } = await c.query('DELETE FROM audit_log WHERE at < $1', [before]);
      return rowCount ?? 0;
    });
  }
}
