/**
 * The audit store on an open database, by its engine: the engine's module is loaded by a dynamic
 * import(), so a process loads only the driver it uses.
 */
import type { EngineDatabase } from '../db/open.js';
import type { AuditStore } from './store.js';

export async function openAuditStore(db: EngineDatabase): Promise<AuditStore> {
  if (db.engine === 'sqlite') {
    const { SqliteAuditStore } = await import('./store-sqlite.js');
    return new SqliteAuditStore(db);
  }
  const { PostgresAuditStore } = await import('./store-postgres.js');
  return new PostgresAuditStore(db);
}
