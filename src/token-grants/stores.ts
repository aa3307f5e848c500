/**
 * The enrollment token store on an open database, by its engine: the engine's module is loaded
 * by a dynamic import(), so a process loads only the driver it uses.
 */
import type { EngineDatabase } from '../db/open.js';
import type { TokenGrantStore } from './store.js';

export async function openTokenGrantStore(db: EngineDatabase): Promise<TokenGrantStore> {
  if (db.engine === 'sqlite') {
    const { SqliteTokenGrantStore } = await import('./store-sqlite.js');
    return new SqliteTokenGrantStore(db);
  }
  const { PostgresTokenGrantStore } = await import('./store-postgres.js');
  return new PostgresTokenGrantStore(db);
}
