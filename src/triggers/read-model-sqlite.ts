/** The trigger read models on SQLite (see read-model.ts). */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Trigger, TriggerCounts, TriggerState } from './outbox.js';
import type { TriggerReadModel } from './read-model.js';
import { triggerFromRow, type TriggerRow } from './rows.js';
import { latestTriggerSql, recentTriggersSql } from './sql.js';

export class SqliteTriggerReadModel implements TriggerReadModel {
  constructor(private readonly db: SqliteDatabase) {}

  latest(deviceId: string): Promise<Trigger | undefined> {
    return this.db.read(() => {
      const row = this.db.statement<TriggerRow>(latestTriggerSql('?')).get(deviceId);
      return row ? triggerFromRow(row) : undefined;
    });
  }

  recent(deviceId: string, limit: number): Promise<Trigger[]> {
    return this.db.read(() =>
      this.db
        .statement<TriggerRow>(recentTriggersSql('?', '?'))
        .all(deviceId, limit)
        .map(triggerFromRow),
    );
  }

  list(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.db.read(() =>
      (state
        ? this.db
            .statement<TriggerRow>(
              'SELECT * FROM triggers WHERE state = ? AND id > ? ORDER BY id LIMIT ?',
            )
            .all(state, afterId ?? 0, limit)
        : this.db
            .statement<TriggerRow>('SELECT * FROM triggers WHERE id > ? ORDER BY id LIMIT ?')
            .all(afterId ?? 0, limit)
      ).map(triggerFromRow),
    );
  }

  countByState(): Promise<TriggerCounts> {
    return this.db.read(() => {
      const counts: TriggerCounts = { pending: 0, delivered: 0, failed: 0, dead: 0 };
      const rows = this.db
        .statement<{ state: TriggerState; n: number }>(
          'SELECT state, count(*) AS n FROM triggers GROUP BY state',
        )
        .all();
      for (const r of rows) counts[r.state] = r.n;
      return counts;
    });
  }
}
