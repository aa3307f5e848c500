/**
 * The trigger stores on an open database, by its engine: the engine's modules are loaded by a
 * dynamic import(), so a process loads only the driver it uses.
 */
import type { EngineDatabase } from '../db/open.js';
import type { OutboxStore } from './outbox.js';
import type { TriggerReadModel } from './read-model.js';

export interface TriggerStores {
  outbox: OutboxStore;
  reads: TriggerReadModel;
}

export interface TriggerStoreOptions {
  /** PostgreSQL: this replica's stable identity in its lease tokens (PostgresOutboxOptions). */
  instanceId?: string;
}

export async function openTriggerStores(
  db: EngineDatabase,
  opts: TriggerStoreOptions = {},
): Promise<TriggerStores> {
  if (db.engine === 'sqlite') {
    const [{ SqliteOutbox }, { SqliteTriggerReadModel }] = await Promise.all([
      import('./outbox-sqlite.js'),
      import('./read-model-sqlite.js'),
    ]);
    return { outbox: new SqliteOutbox(db), reads: new SqliteTriggerReadModel(db) };
  }
  const [{ PostgresOutbox }, { PostgresTriggerReadModel }] = await Promise.all([
    import('./outbox-postgres.js'),
    import('./read-model-postgres.js'),
  ]);
  return { outbox: new PostgresOutbox(db, opts), reads: new PostgresTriggerReadModel(db) };
}
