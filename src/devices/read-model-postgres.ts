/** The device read models on PostgreSQL (see read-model.ts). */
import type { PostgresDatabase } from '../db/postgres/database.js';
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

export class PostgresDeviceReadModel implements DeviceReadModel {
  constructor(private readonly db: PostgresDatabase) {}

  async listIds(after: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      'SELECT id FROM devices WHERE id > $1 ORDER BY id LIMIT $2',
      [after ?? '', limit],
    );
    return rows.map((r) => r.id);
  }

  async queryDevices(q: DeviceQuery): Promise<{ total: number; items: DeviceWithLatestTrigger[] }> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (q.search) {
      params.push(likePattern(q.search));
      conditions.push(
        `(lower(id) LIKE $${params.length} ESCAPE '\\' OR lower(name) LIKE $${params.length} ESCAPE '\\' OR lower(ip) LIKE $${params.length} ESCAPE '\\'
          OR id IN (SELECT device_id FROM aliases WHERE lower(value) LIKE $${params.length} ESCAPE '\\'))`,
      );
    }
    if (q.triggerState) {
      params.push(q.triggerState);
      conditions.push(latestTriggerStateSql(`$${params.length}`));
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const n = params.length;
    const page = `SELECT *, count(*) OVER () AS total FROM devices ${where}
       ORDER BY ${devicePageOrder(q)} LIMIT $${n + 1} OFFSET $${n + 2}`;
    const { rows } = await this.db.query<DeviceWithTriggerRow & { total: string }>(
      withLatestTriggerSql(page, devicePageOrder(q, 'page')),
      [...params, q.limit, q.offset],
    );
    let total = rows[0] ? Number(rows[0].total) : 0;
    if (!rows[0] && q.offset > 0) {
      const counted = await this.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM devices ${where}`,
        params,
      );
      total = Number(counted.rows[0]!.n);
    }
    return { total, items: rows.map(deviceWithTriggerFromRow) };
  }

  async countDevices(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM devices');
    return Number(rows[0]!.n);
  }

  async countSeenSince(since: number): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM devices WHERE last_seen >= $1',
      [since],
    );
    return Number(rows[0]!.n);
  }

  async countDevicesByTrigger(): Promise<TriggerCounts> {
    const { rows } = await this.db.query<{ state: TriggerState; n: string }>(
      COUNT_DEVICES_BY_TRIGGER_SQL,
    );
    const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
    for (const r of rows) counts[r.state] = Number(r.n);
    return counts;
  }

  async bareMacIds(limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      "SELECT id FROM devices WHERE id ~ '^[0-9A-Fa-f]{12}$' ORDER BY id LIMIT $1",
      [limit],
    );
    return rows.map((r) => r.id);
  }
}
