/** The audit store on SQLite (see store.ts); statements through the database's cache. */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Step } from '../db/unit-of-work.js';
import type { AuditRecord } from '../devices/admin.js';
import { auditFromRow, auditValues, type AuditRow } from './sql.js';
import type { AuditEntry, AuditQuery, AuditStore } from './store.js';

const INSERT = `INSERT INTO audit_log (at, actor, source, action, via, device_id, before, after, detail)
  VALUES (@at, @actor, @source, @action, @via, @device, @before, @after, @detail) RETURNING *`;
const LIST = 'SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?';
const LIST_DEVICE = 'SELECT * FROM audit_log WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?';
const PRUNE = 'DELETE FROM audit_log WHERE at < ?';

export class SqliteAuditStore implements AuditStore {
  constructor(private readonly db: SqliteDatabase) {}

  appendStep(entry: () => AuditRecord): Step<AuditEntry> {
    return this.db.step(() =>
      auditFromRow(this.db.statement<AuditRow>(INSERT).get(auditValues(entry()))!),
    );
  }

  list(q: AuditQuery): Promise<AuditEntry[]> {
    const after = q.after ?? 0;
    return this.db.read(() =>
      (q.device === undefined
        ? this.db.statement<AuditRow>(LIST).all(after, q.limit)
        : this.db.statement<AuditRow>(LIST_DEVICE).all(q.device, after, q.limit)
      ).map(auditFromRow),
    );
  }

  prune(before: number): Promise<number> {
    return this.db.write(() => this.db.statement(PRUNE).run(before).changes);
  }
}
