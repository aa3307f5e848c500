/**
 * The enrollment token store on an open database, by its engine: the engine's module is loaded
 * by a dynamic import(), so a process loads only the driver it uses.
 */
import type { EngineDatabase } from '../db/open.js';
import type { EnrollmentStore } from './store.js';

export async function openEnrollmentStore(db: EngineDatabase): Promise<EnrollmentStore> {
  if (db.engine === 'sqlite') {
    const { SqliteEnrollmentStore } = await import('./store-sqlite.js');
    return new SqliteEnrollmentStore(db);
  }
  const { PostgresEnrollmentStore } = await import('./store-postgres.js');
  return new PostgresEnrollmentStore(db);
}
