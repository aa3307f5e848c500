/** The trigger read models on PostgreSQL (see read-model.ts). */
import type { PostgresDatabase } from '../db/postgres/database.js';
import type { Trigger, TriggerCounts, TriggerState } from './outbox.js';
import type { TriggerReadModel } from './read-model.js';
import { triggerFromRow, type TriggerRow } from './rows.js';
import { latestTriggerSql, recentTriggersSql } from './sql.js';

export class PostgresTriggerReadModel implements TriggerReadModel {
  constructor(private readonly db: PostgresDatabase) {}

  async latest(deviceId: string): Promise<Trigger | undefined> {
    const { rows } = await this.db.query<TriggerRow>(latestTriggerSql('$1'), [deviceId]);
    return rows[0] ? triggerFromRow(rows[0]) : undefined;
  }

  async recent(deviceId: string, limit: number): Promise<Trigger[]> {
    const { rows } = await this.db.query<TriggerRow>(recentTriggersSql('$1', '$2'), [
      deviceId,
      limit,
    ]);
    return rows.map(triggerFromRow);
  }

  async list(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    const { rows } = state
      ? await this.db.query<TriggerRow>(
          'SELECT * FROM triggers WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3',
          [state, afterId ?? 0, limit],
        )
      : await this.db.query<TriggerRow>(
          'SELECT * FROM triggers WHERE id > $1 ORDER BY id LIMIT $2',
          [afterId ?? 0, limit],
        );
    return rows.map(triggerFromRow);
  }

  async countByState(): Promise<TriggerCounts> {
    const { rows } = await this.db.query<{ state: TriggerState; n: string }>(
      'SELECT state, count(*) AS n FROM triggers GROUP BY state',
    );
    const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
    for (const r of rows) counts[r.state] = Number(r.n);
    return counts;
  }
}
