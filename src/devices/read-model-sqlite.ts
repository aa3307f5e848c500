/** The device read models on SQLite (see read-model.ts). */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import { likePattern } from '../db/sql.js';
import type { TriggerCounts, TriggerState } from '../triggers/outbox.js';
import type { DeviceQuery, DeviceReadModel, DeviceWithLatestTrigger } from './read-model.js';
import { deviceWithTriggerFromRow, type DeviceWithTriggerRow } from './rows.js';
import {
  COUNT_DEVICES_BY_TRIGGER_SQL,
  devicePageOrder,
  latestTriggerStateSql,
  withLatestTriggerSql,
} from './sql.js';

export class SqliteDeviceReadModel implements DeviceReadModel {
  constructor(private readonly db: SqliteDatabase) {}

  listIds(after: string | undefined, limit: number): Promise<string[]> {
    return this.db.read(
      () =>
        this.db
          .statement('SELECT id FROM devices WHERE id > ? ORDER BY id LIMIT ?')
          .pluck()
          .all(after ?? '', limit) as string[],
    );
  }

  queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    return this.db.read(() => {
      const conditions: string[] = [];
      const params: Record<string, string> = {};
      if (q.search) {
        conditions.push(
          "(lower(id) LIKE @p ESCAPE '\\' OR lower(name) LIKE @p ESCAPE '\\' OR ip LIKE @p ESCAPE '\\'" +
            " OR id IN (SELECT device_id FROM aliases WHERE lower(value) LIKE @p ESCAPE '\\'))",
        );
        params.p = likePattern(q.search);
      }
      if (q.triggerState) {
        conditions.push(latestTriggerStateSql('@state'));
        params.state = q.triggerState;
      }
      const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
      // The statement cache holds one entry per filter and sort combination (a few dozen).
      const total = this.db
        .statement<{ n: number }>(`SELECT count(*) AS n FROM devices ${where}`)
        .get(params)!.n;
      const page = `SELECT * FROM devices ${where} ORDER BY ${devicePageOrder(q)} LIMIT @limit OFFSET @offset`;
      const rows = this.db
        .statement<DeviceWithTriggerRow>(withLatestTriggerSql(page, devicePageOrder(q, 'page')))
        .all({ ...params, limit: q.limit, offset: q.offset });
      return { total, items: rows.map(deviceWithTriggerFromRow) };
    });
  }

  countDevices(): Promise<number> {
    return this.db.read(
      () => this.db.statement<{ n: number }>('SELECT count(*) AS n FROM devices').get()!.n,
    );
  }

  countSeenSince(since: number): Promise<number> {
    return this.db.read(
      () =>
        this.db
          .statement<{ n: number }>('SELECT count(*) AS n FROM devices WHERE last_seen >= ?')
          .get(since)!.n,
    );
  }

  countDevicesByTrigger(): Promise<TriggerCounts> {
    return this.db.read(() => {
      const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
      const rows = this.db
        .statement<{ state: TriggerState; n: number }>(COUNT_DEVICES_BY_TRIGGER_SQL)
        .all();
      for (const r of rows) counts[r.state] = r.n;
      return counts;
    });
  }

  bareMacIds(limit: number): Promise<string[]> {
    return this.db.read(
      () =>
        this.db
          .statement(
            "SELECT id FROM devices WHERE length(id) = 12 AND id NOT GLOB '*[^0-9A-Fa-f]*' ORDER BY id LIMIT ?",
          )
          .pluck()
          .all(limit) as string[],
    );
  }
}
